// The management operations, one function each, called by the SQL API (api.cpp) and by the
// background worker. Each returns the uniform response; none raises for an operational failure.
#pragma once

#include "boundary/pg.hpp"
#include "core/json.hpp"

#include <optional>
#include <string>
#include <vector>

namespace mv::ops {

using OptText = std::optional<std::string>;
using OptTextList = std::optional<std::vector<std::string>>;

struct CreateArgs {
    OptText name;
    OptText sql;
    std::string refresh_strategy = "regular";
    OptTextList unique_index_columns;
    bool force = false;
    bool with_data = true;
    OptText row_count_strategy;
    OptText schedule;
    OptText source;
};
Json create(const CreateArgs& args);

struct AdoptArgs {
    OptText name;
    std::string refresh_strategy = "regular";
    OptTextList unique_index_columns;
    std::optional<Json> options;
};
Json adopt(const AdoptArgs& args);

struct RefreshArgs {
    OptText name;
    std::optional<Oid> relid;  // a queued run or a cascade: the relation itself, never a name
    OptText strategy;
    OptText row_count_strategy;
    bool cascade = false;
    std::string trigger = "manual";
    std::optional<int64_t> queued_run_id;
};
Json refresh(const RefreshArgs& args);

struct SwapArgs {
    OptText name;
    std::optional<Oid> relid;  // a queued run: the relation itself, never a name
    OptText sql;               // a new query: zero-downtime redefinition
    OptText row_count_strategy;
    std::string trigger = "manual";
    std::optional<int64_t> queued_run_id;
};
Json swap(const SwapArgs& args);

struct EnqueueArgs {
    OptText name;
    std::string operation = "refresh";
    OptText strategy;
    int64_t run_at = 0;  // TimestampTz
};
Json enqueue(const EnqueueArgs& args);
Json schedule(const OptText& name, const OptText& schedule);
Json unschedule(const OptText& name);
// matviews.watch: the view is refreshed by the worker, with its own strategy, after a commit
// changes a table it reads (at most once per min_interval). unwatch ends that.
Json watch(const OptText& name, const OptText& min_interval);
Json unwatch(const OptText& name);
// matviews.explain: which strategies apply to a view (name) or a query (sql), and why not; its
// key, and its base tables with how their changes map to view rows. Read-only, not recorded.
Json explain(const OptText& name, const OptText& sql);
// Waits up to timeout_ms for a run to end; returns its outcome or current state.
Json wait(int64_t run_id, int64_t timeout_ms);

// matviews.cancel: a queued run becomes cancelled; a running one gets a query cancel, its job
// rolls its work back and records it cancelled. Rights: the run's owner (a member, a superuser).
// Raises its errors (42704 unknown run, 42501, 25001 outside READ COMMITTED for a running run).
Json cancel(int64_t run_id);

struct DeleteArgs {
    OptText name;
    bool cascade = false;
    bool if_exists = true;
    bool keep_definition = false;
};
Json remove(const DeleteArgs& args);

struct AlterArgs {
    OptText name;
    OptText refresh_strategy;
    OptTextList unique_index_columns;
    std::optional<Json> options;
    std::optional<bool> enabled;
};
Json alter(const AlterArgs& args);

}  // namespace mv::ops
