// matviews' own tables: definitions and runs. Every read and write runs as the extension's owner
// with search_path pinned to pg_catalog, so row-level security (which limits what users see)
// does not hide rows from the operations, and users cannot write the tables directly. Callers
// check the user's rights on the view first.
#pragma once

#include "boundary/spi.hpp"
#include "core/names.hpp"

namespace mv::catalog {

struct Definition {
    int64_t id = 0;
    std::string schema;
    std::string name;
    std::string sql;
    std::string search_path;
    std::string refresh_strategy = "regular";
    std::optional<std::vector<std::string>> unique_index_columns;
    Json options = Json::object();
    bool enabled = true;
    std::string owner;
    std::optional<std::string> schedule;
    std::optional<std::string> source;
    std::optional<std::string> watch_min_interval;
    int consecutive_failures = 0;
};

// A run as the runner finishes it.
struct RunOutcome {
    int64_t id = 0;
    std::string view;
    std::optional<int64_t> definition_id;
    std::optional<std::string> strategy;
    std::string status;  // success, failed, skipped
    double duration_ms = 0;
    std::optional<int64_t> row_count_before;
    std::optional<int64_t> row_count_after;
    std::optional<Json> error;
    Json meta = Json::object();
    std::string owner;
};

class Store {
  public:
    explicit Store(pg::Spi& spi) : spi_(spi) {}

    std::optional<Definition> find(const std::string& schema, const std::string& name);
    // The definition of an unqualified name: the first schema of search_path that has one.
    std::optional<Definition> find_in_search_path(const std::string& name);
    // The definition of a parsed name: its schema's, or found through search_path.
    std::optional<Definition> find(const QualifiedName& q) {
        return q.schema ? find(*q.schema, q.name) : find_in_search_path(q.name);
    }
    int64_t insert(const Definition& d);
    // Writes every setting of d (by id) and bumps updated_at.
    void update(const Definition& d);
    void remove(int64_t id);
    // Sets the definition's owner only (the view changed hands).
    void set_owner(int64_t id, const std::string& owner);
    // Counts consecutive failures of refresh-like runs.
    void record_outcome(int64_t id, bool success);

    // Inserts a run in state running; returns its id.
    int64_t begin_run(const std::string& view, const std::string& operation,
                      const std::string& trigger, const Json& request);
    // Inserts a queued run for the background worker; returns its id. run_at is a TimestampTz.
    int64_t enqueue_run(const std::string& view, std::optional<int64_t> definition_id,
                        const std::string& operation, const std::optional<std::string>& strategy,
                        int64_t run_at, const std::string& owner, const Json& request);
    // What a job needs of its queued run.
    struct QueuedRun {
        std::string view;
        std::string operation;
        std::optional<std::string> strategy;
        std::string trigger;
    };
    // Locks a queued run and marks it running in this backend (a job worker claims its run);
    // nullopt when it is no longer queued.
    std::optional<QueuedRun> claim_queued_run(int64_t id);
    void finish_run(const RunOutcome& r);
    // Sets meta.response.<key> of a finished run (e.g. the cascade a refresh started).
    void annotate_run(int64_t id, const std::string& key, const Json& value);

  private:
    pg::Spi& spi_;
};

}  // namespace mv::catalog
