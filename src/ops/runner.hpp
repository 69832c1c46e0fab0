// The operation runner: every management function is one recorded operation. It inserts the run,
// runs the operation's body in a subtransaction, records the outcome (duration, row counts,
// error, request and response) and returns the uniform jsonb response of SPEC §3. A failure
// rolls back only the body; it is returned, never raised, except a cancel or the session's
// statement_timeout, which is raised as PostgreSQL raised it. Until the caller's rights on the
// view have been checked (ctx.rights_checked), the run is the caller's alone: a refused call is
// never recorded against the view's definition or owner. The body finds its view through the
// pipeline (pipeline.hpp).
#pragma once

#include "boundary/spi.hpp"
#include "catalog/relation.hpp"
#include "boundary/scopes.hpp"
#include "catalog/store.hpp"

namespace mv::ops {

enum class RowCountStrategy { none, estimated, exact };

// Parses a row_count_strategy argument (null means `fallback`); 22023 for anything else.
RowCountStrategy parse_row_count_strategy(const std::optional<std::string>& s,
                                          RowCountStrategy fallback);
std::string to_string(RowCountStrategy s);

// The "error" member of a response, and of a run.
Json error_json(const ErrorInfo& e);

// Validates a refresh strategy name (regular, concurrent, swap, incremental); 22023 otherwise.
std::string check_strategy(const std::string& s, const char* argument);

// What the runner records about one operation while its body runs.
class Context {
  public:
    Context(pg::Spi& spi, catalog::Store& store, Json request)
        : spi(spi), store(store), request(std::move(request)) {}

    pg::Spi& spi;
    catalog::Store& store;
    Json request;                    // effective options, as given or defaulted
    Json response = Json::object();  // operation-specific fields; "sql" is added by the runner
    std::string view;                // quoted name, once resolved
    std::string owner;               // the view's owner, once known
    std::optional<int64_t> definition_id;
    // Set by the pipeline once the caller's rights on the view were checked: from then on the
    // run is recorded against the view's definition and owner.
    bool rights_checked = false;
    // The caller's search_path, read before any statement runs (statements run pinned).
    std::string caller_search_path;
    std::optional<std::string> strategy;
    std::string status = "updated";  // response status on success
    std::optional<int64_t> row_count_before;
    std::optional<int64_t> row_count_after;
    // For operations whose record is another run (enqueue): the run id to answer with.
    std::optional<int64_t> answer_run_id;
    bool coalesced = false;                // answer_run_id is a run queued earlier (enqueue)
    std::optional<int64_t> queued_run_id;  // the background run this operation executes
    // The definition's watch as the pipeline read it under the view's lock (refresh, swap).
    std::optional<catalog::WatchSeen> watch_seen;

    // Runs a statement as the caller and lists it in response.sql.
    void execute(const std::string& sql);
    // The same for a statement that runs the view owner's query (CREATE ... AS, REFRESH), under
    // search_path (nullopt: the caller's).
    void execute_owner_code(const std::string& sql, const std::optional<std::string>& search_path);
    // Ends the operation as skipped with a reason (the body returns right after).
    void skip(const std::string& reason);
    // Takes the per-view operation lock; false (and skipped, "already running") when another
    // session holds it.
    bool lock_view(const pg::ViewLockKey& key);
    // Row count of a relation under the given strategy.
    std::optional<int64_t> count_rows(const catalog::RelationInfo& rel, RowCountStrategy s);
    // The statements executed so far.
    const std::vector<std::string>& statements() const { return sql_; }

  private:
    std::vector<std::string> sql_;
};

struct Operation {
    std::string name;      // create, refresh, delete, alter, adopt, swap, ...
    std::string raw_view;  // the name argument as passed, recorded until resolved
    std::string trigger = "manual";
    std::optional<int64_t> queued_run_id;  // run an existing queued run (background worker)
    bool counts_as_refresh = false;        // updates the definition's consecutive_failures
    bool recorded_by_body = false;         // on success the body's own run is the record
};

// Runs body as one recorded operation and returns its response.
Json run(const Operation& op, Json request, const std::function<void(Context&)>& body);

}  // namespace mv::ops
