// Reads and writes of matviews.definitions and matviews.runs (see store.hpp).
#include "catalog/store.hpp"

#include "boundary/scopes.hpp"
#include "worker/shmem.hpp"

namespace mv::catalog {

namespace {

// Runs internal catalog statements as the extension owner with a pinned search_path; the
// caller's name is kept for the runs.role column.
class AsExtensionOwner {
  public:
    AsExtensionOwner()
        : caller_(pg::role_name(pg::current_role())), role_(pg::extension_owner(), false) {
        guc_.set("search_path", "pg_catalog, pg_temp");
    }
    const std::string& caller() const { return caller_; }

  private:
    std::string caller_;
    pg::RoleScope role_;
    pg::GucScope guc_;
};

constexpr const char* kDefinitionColumns =
    "id, schema_name::pg_catalog.text, view_name::pg_catalog.text, sql, search_path, "
    "refresh_strategy, unique_index_columns, options, enabled, "
    "owner::pg_catalog.text, "
    "schedule, source, watch_min_interval::pg_catalog.text, consecutive_failures";

Definition definition_from(const pg::Row& row) {
    // Builds a Definition from a row of kDefinitionColumns.
    Definition d;
    d.id = row[0].as_int();
    d.schema = row[1].as_string();
    d.name = row[2].as_string();
    d.sql = row[3].as_string();
    d.search_path = row[4].as_string();
    d.refresh_strategy = row[5].as_string();
    if (!row[6].is_null()) d.unique_index_columns = row[6].as_text_array();
    d.options = row[7].as_json();
    d.enabled = row[8].as_bool();
    d.owner = row[9].as_string();
    d.schedule = row[10].text();
    d.source = row[11].text();
    d.watch_min_interval = row[12].text();
    d.consecutive_failures = static_cast<int>(row[13].as_int());
    return d;
}

pg::Param text_array_or_null(const std::optional<std::vector<std::string>>& v) {
    return v ? pg::Param::text_array(*v) : pg::Param::null(TEXTARRAYOID);
}

}  // namespace

std::optional<Definition> Store::find(const std::string& schema, const std::string& name) {
    // By (schema_name, view_name).
    AsExtensionOwner as;
    auto r = spi_.exec(fmt::format("SELECT {} FROM matviews.definitions "
                                   "WHERE schema_name OPERATOR(pg_catalog.=) $1::pg_catalog.name "
                                   "AND view_name OPERATOR(pg_catalog.=) $2::pg_catalog.name",
                                   kDefinitionColumns),
                       {pg::Param::text(schema), pg::Param::text(name)});
    if (r.empty()) return std::nullopt;
    return definition_from(r.first());
}

std::optional<Definition> Store::find_in_search_path(const std::string& name) {
    // The first schema of current_schemas(false) with a definition of that name.
    auto r = spi_.exec(
        "SELECT s.nsp::pg_catalog.text FROM pg_catalog.unnest(pg_catalog.current_schemas(false)) "
        "WITH ORDINALITY AS s(nsp, ord) ORDER BY s.ord",
        {});
    for (const auto& row : r.rows) {
        auto d = find(row[0].as_string(), name);
        if (d) return d;
    }
    return std::nullopt;
}

int64_t Store::insert(const Definition& d) {
    // INSERT ... RETURNING id.
    AsExtensionOwner as;
    auto v = spi_.scalar(
        "INSERT INTO matviews.definitions (schema_name, view_name, sql, search_path, "
        "refresh_strategy, "
        "unique_index_columns, options, enabled, owner, schedule, source, watch_min_interval) "
        "VALUES ($1::pg_catalog.name, $2::pg_catalog.name, $3, $4, $5, $6, $7, $8, "
        "$9::pg_catalog.name, "
        "$10, $11, $12::pg_catalog.interval) RETURNING id",
        {pg::Param::text(d.schema), pg::Param::text(d.name), pg::Param::text(d.sql),
         pg::Param::text(d.search_path), pg::Param::text(d.refresh_strategy),
         text_array_or_null(d.unique_index_columns), pg::Param::jsonb(d.options),
         pg::Param::boolean(d.enabled), pg::Param::text(d.owner), pg::Param::opt_text(d.schedule),
         pg::Param::opt_text(d.source), pg::Param::opt_text(d.watch_min_interval)});
    worker::wake_scheduler_at_commit(true);
    return v.as_int();
}

void Store::update(const Definition& d) {
    // UPDATE every setting by id.
    AsExtensionOwner as;
    spi_.exec(
        "UPDATE matviews.definitions SET sql = $2, search_path = $3, refresh_strategy = $4, "
        "unique_index_columns = $5, options = $6, enabled = $7, owner = $8::pg_catalog.name, "
        "schedule = $9, next_run_at = CASE WHEN $9 IS NULL THEN NULL ELSE next_run_at END, source "
        "= $10, "
        "watch_min_interval = $11::pg_catalog.interval, "
        "updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(d.id), pg::Param::text(d.sql), pg::Param::text(d.search_path),
         pg::Param::text(d.refresh_strategy), text_array_or_null(d.unique_index_columns),
         pg::Param::jsonb(d.options), pg::Param::boolean(d.enabled), pg::Param::text(d.owner),
         pg::Param::opt_text(d.schedule), pg::Param::opt_text(d.source),
         pg::Param::opt_text(d.watch_min_interval)});
    worker::wake_scheduler_at_commit(true);
}

void Store::remove(int64_t id) {
    // DELETE by id.
    AsExtensionOwner as;
    spi_.exec("DELETE FROM matviews.definitions WHERE id OPERATOR(pg_catalog.=) $1",
              {pg::Param::int8(id)});
    worker::wake_scheduler_at_commit(true);
}

void Store::set_owner(int64_t id, const std::string& owner) {
    // UPDATE of the owner column alone, so concurrent changes of other settings are kept.
    AsExtensionOwner as;
    spi_.exec(
        "UPDATE matviews.definitions SET owner = $2::pg_catalog.name, updated_at = "
        "pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id), pg::Param::text(owner)});
}

void Store::record_outcome(int64_t id, bool success) {
    // Resets or increments consecutive_failures.
    AsExtensionOwner as;
    spi_.exec(
        success
            ? "UPDATE matviews.definitions SET consecutive_failures = 0 "
              "WHERE id OPERATOR(pg_catalog.=) $1"
            : "UPDATE matviews.definitions SET consecutive_failures = "
              "consecutive_failures OPERATOR(pg_catalog.+) 1 WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id)});
}

int64_t Store::begin_run(const std::string& view, const std::string& operation,
                         const std::string& trigger, const Json& request) {
    // INSERT a running run, owned for now by the caller (finish_run sets the view's owner).
    AsExtensionOwner as;
    Json meta = Json::object();
    meta.set("request", request);
    auto v = spi_.scalar(
        "INSERT INTO matviews.runs (view, operation, status, trigger, started_at, role, owner, "
        "pid, meta) "
        "VALUES ($1, $2, 'running', $3, pg_catalog.clock_timestamp(), $4::pg_catalog.name, "
        "$4::pg_catalog.name, $5, $6) RETURNING id",
        {pg::Param::text(view), pg::Param::text(operation), pg::Param::text(trigger),
         pg::Param::text(as.caller()), pg::Param::int4(pg::backend_pid()), pg::Param::jsonb(meta)});
    return v.as_int();
}

int64_t Store::enqueue_run(const std::string& view, std::optional<int64_t> definition_id,
                           const std::string& operation, const std::optional<std::string>& strategy,
                           int64_t run_at, const std::string& owner, const Json& request) {
    // INSERT a queued run, as the caller (runs.role) for the view's owner.
    AsExtensionOwner as;
    Json meta = Json::object();
    meta.set("request", request);
    auto v = spi_.scalar(
        "INSERT INTO matviews.runs (view, definition_id, operation, strategy, status, trigger, "
        "run_at, role, owner, meta) "
        "VALUES ($1, $2, $3, $4, 'queued', 'queue', $5, $6::pg_catalog.name, $7::pg_catalog.name, "
        "$8) RETURNING id",
        {pg::Param::text(view), pg::Param::opt_int8(definition_id), pg::Param::text(operation),
         pg::Param::opt_text(strategy), pg::Param::timestamptz(run_at),
         pg::Param::text(as.caller()), pg::Param::text(owner), pg::Param::jsonb(meta)});
    worker::wake_scheduler_at_commit(false);
    return v.as_int();
}

std::optional<Store::QueuedRun> Store::claim_queued_run(int64_t id) {
    // queued -> running, in this backend.
    AsExtensionOwner as;
    auto r = spi_.exec(
        "SELECT view, operation, strategy, trigger FROM matviews.runs "
        "WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'queued' FOR UPDATE",
        {pg::Param::int8(id)});
    if (r.empty()) return std::nullopt;
    QueuedRun q{r.first()[0].as_string(), r.first()[1].as_string(), r.first()[2].text(),
                r.first()[3].as_string()};
    spi_.exec(
        "UPDATE matviews.runs SET status = 'running', started_at = pg_catalog.clock_timestamp(), "
        "pid = $2, attempt = attempt OPERATOR(pg_catalog.+) 1 WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id), pg::Param::int4(pg::backend_pid())});
    return q;
}

void Store::finish_run(const RunOutcome& r) {
    // Final state, timings, counts, error and meta.
    AsExtensionOwner as;
    std::optional<std::string> owner;
    if (!r.owner.empty()) owner = r.owner;
    spi_.exec(
        "UPDATE matviews.runs SET view = $2, definition_id = $3, strategy = $4, status = $5, "
        "finished_at = pg_catalog.clock_timestamp(), duration_ms = $6, row_count_before = $7, "
        "row_count_after = $8, error = $9, meta = meta OPERATOR(pg_catalog.||) $10, owner = "
        "COALESCE($11::pg_catalog.name, "
        "owner) "
        "WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(r.id), pg::Param::text(r.view), pg::Param::opt_int8(r.definition_id),
         pg::Param::opt_text(r.strategy), pg::Param::text(r.status),
         pg::Param::float8(r.duration_ms), pg::Param::opt_int8(r.row_count_before),
         pg::Param::opt_int8(r.row_count_after),
         r.error ? pg::Param::jsonb(*r.error) : pg::Param::null(JSONBOID), pg::Param::jsonb(r.meta),
         pg::Param::opt_text(owner)});
}

void Store::annotate_run(int64_t id, const std::string& key, const Json& value) {
    // jsonb_set on meta.response, creating the key.
    AsExtensionOwner as;
    spi_.exec(
        "UPDATE matviews.runs SET meta = pg_catalog.jsonb_set(meta, "
        "pg_catalog.array_append('{response}'::pg_catalog.text[], $2), $3, true) "
        "WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id), pg::Param::text(key), pg::Param::jsonb(value)});
}

}  // namespace mv::catalog
