// Reads and writes of matviews.definitions and matviews.runs (see store.hpp).
#include "catalog/store.hpp"
#include "catalog/store_internal.hpp"

#include "boundary/scopes.hpp"
#include "catalog/relation.hpp"
#include "boundary/wakeup.hpp"

namespace mv::catalog {

namespace {

constexpr const char* kDefinitionColumns =
    "id, schema_name::pg_catalog.text, view_name::pg_catalog.text, sql, search_path, "
    "refresh_strategy, unique_index_columns, options, enabled, "
    "owner::pg_catalog.text, "
    "schedule, source, watch_min_interval::pg_catalog.text, consecutive_failures, "
    "relid::pg_catalog.oid, stale, pending_changes, change_seq";

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
    d.options = row[7].is_null() ? Json::object() : row[7].as_json();
    d.enabled = row[8].is_null() || row[8].as_bool();
    d.owner = row[9].text().value_or("");
    d.schedule = row[10].text();
    d.source = row[11].text();
    d.watch_min_interval = row[12].text();
    d.consecutive_failures = row[13].is_null() ? 0 : static_cast<int>(row[13].as_int());
    d.relid = row[14].is_null() ? InvalidOid : static_cast<Oid>(row[14].as_int());
    d.stale = !row[15].is_null() && row[15].as_bool();
    d.pending_changes = row[16].is_null() ? 0 : row[16].as_int();
    d.change_seq = row[17].is_null() ? 0 : row[17].as_int();
    return d;
}

pg::Param text_array_or_null(const std::optional<std::vector<std::string>>& v) {
    return v ? pg::Param::text_array(*v) : pg::Param::null(TEXTARRAYOID);
}

pg::Param oid_array(const std::vector<Oid>& oids) {
    // An oid[] parameter, as text (the array's input function does the rest).
    std::string text = "{";
    for (size_t i = 0; i < oids.size(); i++) text += (i ? "," : "") + std::to_string(oids[i]);
    return pg::Param::text(text + "}");
}

std::vector<Oid>& replacing() {
    static std::vector<Oid> relids;
    return relids;
}

}  // namespace

ReplacingRelations::ReplacingRelations(std::vector<Oid> relids) : relids_(std::move(relids)) {
    for (Oid r : relids_) replacing().push_back(r);
}

ReplacingRelations::~ReplacingRelations() {
    auto& all = replacing();
    for (Oid r : relids_) {
        auto it = std::find(all.begin(), all.end(), r);
        if (it != all.end()) all.erase(it);
    }
}

bool ReplacingRelations::contains(Oid relid) {
    const auto& all = replacing();
    return std::find(all.begin(), all.end(), relid) != all.end();
}

std::optional<Definition> Store::find_by_relid(Oid relid) {
    AsExtensionOwner as;
    auto r = spi_.exec(fmt::format("SELECT {} FROM matviews.definitions "
                                   "WHERE relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
                                   kDefinitionColumns),
                       {pg::Param::oid(relid)});
    if (r.empty()) return std::nullopt;
    return definition_from(r.first());
}

std::optional<Definition> Store::find_by_id(int64_t id) {
    AsExtensionOwner as;
    auto r = spi_.exec(fmt::format("SELECT {} FROM matviews.definitions "
                                   "WHERE id OPERATOR(pg_catalog.=) $1",
                                   kDefinitionColumns),
                       {pg::Param::int8(id)});
    if (r.empty()) return std::nullopt;
    return definition_from(r.first());
}

std::optional<Definition> Store::find_detached(const std::string& schema, const std::string& name) {
    AsExtensionOwner as;
    auto r = spi_.exec(fmt::format("SELECT {} FROM matviews.definitions "
                                   "WHERE relid IS NULL "
                                   "AND schema_name OPERATOR(pg_catalog.=) $1::pg_catalog.name "
                                   "AND view_name OPERATOR(pg_catalog.=) $2::pg_catalog.name",
                                   kDefinitionColumns),
                       {pg::Param::text(schema), pg::Param::text(name)});
    if (r.empty()) return std::nullopt;
    return definition_from(r.first());
}

std::optional<Definition> Store::find_detached(const QualifiedName& q) {
    // An unqualified name: the first schema of the caller's search_path that has one.
    if (q.schema) return find_detached(*q.schema, q.name);
    for (const auto& schema : search_path_schemas()) {
        auto d = find_detached(schema, q.name);
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
        "unique_index_columns, options, enabled, owner, schedule, source, watch_min_interval, "
        "relid) "
        "VALUES ($1::pg_catalog.name, $2::pg_catalog.name, $3, $4, $5, $6, $7, $8, "
        "$9::pg_catalog.name, "
        "$10, $11, $12::pg_catalog.interval, $13::pg_catalog.regclass) RETURNING id",
        {pg::Param::text(d.schema), pg::Param::text(d.name), pg::Param::text(d.sql),
         pg::Param::text(d.search_path), pg::Param::text(d.refresh_strategy),
         text_array_or_null(d.unique_index_columns), pg::Param::jsonb(d.options),
         pg::Param::boolean(d.enabled), pg::Param::text(d.owner), pg::Param::opt_text(d.schedule),
         pg::Param::opt_text(d.source), pg::Param::opt_text(d.watch_min_interval),
         d.relid == InvalidOid ? pg::Param::null(OIDOID) : pg::Param::oid(d.relid)});
    pg::wake_scheduler_at_commit(true);
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
    pg::wake_scheduler_at_commit(true);
}

void Store::remove(int64_t id) {
    // DELETE by id.
    AsExtensionOwner as;
    spi_.exec("DELETE FROM matviews.definitions WHERE id OPERATOR(pg_catalog.=) $1",
              {pg::Param::int8(id)});
    pg::wake_scheduler_at_commit(true);
}

void Store::detach(int64_t id) {
    // relid NULL; a detached definition with the same name is an error (23505) from the index.
    // Its watch ends: the relations it followed may be gone too (the scheduler drops the
    // triggers no watch needs).
    AsExtensionOwner as;
    spi_.exec(
        "UPDATE matviews.definitions SET relid = NULL, next_run_at = NULL, "
        "watch_min_interval = NULL, watch_relids = NULL, stale = false, stale_since = NULL, "
        "pending_changes = 0, updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id)});
    pg::wake_scheduler_at_commit(true);
}

void Store::rebind(Oid from, Oid to) {
    // Definitions, the watches that read the relation, and unfinished runs follow the relation
    // that replaced theirs.
    AsExtensionOwner as;
    spi_.exec(
        "UPDATE matviews.definitions SET relid = $2::pg_catalog.regclass "
        "WHERE relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
        {pg::Param::oid(from), pg::Param::oid(to)});
    spi_.exec(
        "UPDATE matviews.definitions "
        "SET watch_relids = pg_catalog.array_replace(watch_relids, $1::pg_catalog.regclass, "
        "$2::pg_catalog.regclass) "
        "WHERE $1::pg_catalog.regclass OPERATOR(pg_catalog.=) ANY (watch_relids)",
        {pg::Param::oid(from), pg::Param::oid(to)});
    spi_.exec(
        "UPDATE matviews.runs SET relid = $2::pg_catalog.regclass "
        "WHERE relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
        {pg::Param::oid(from), pg::Param::oid(to)});
}

int64_t Store::relations_dropped(const std::vector<Oid>& relids) {
    // Queued runs of those relations end as cancelled (history keeps them); running ones lose
    // their binding (their job is the one dropping, or ends on the missing relation).
    AsExtensionOwner as;
    pg::Param ids = oid_array(relids);
    spi_.exec(
        "UPDATE matviews.runs SET status = 'cancelled', finished_at = "
        "pg_catalog.clock_timestamp(), relid = NULL, error = pg_catalog.jsonb_build_object("
        "'message', 'the materialized view was dropped', 'sqlstate', '42P01', 'detail', NULL, "
        "'hint', NULL) "
        "WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[]) "
        "AND status OPERATOR(pg_catalog.=) 'queued'",
        {ids});
    spi_.exec(
        "UPDATE matviews.runs SET relid = NULL "
        "WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])",
        {ids});
    auto r = spi_.exec(
        "DELETE FROM matviews.definitions "
        "WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])",
        {ids});
    if (r.processed > 0) pg::wake_scheduler_at_commit(true);
    return static_cast<int64_t>(r.processed);
}

Store::DdlCommands Store::ddl_commands() {
    // One read of the command's list for both uses below.
    auto r = spi_.exec(R"SQL(
        WITH c AS (
            SELECT objid, classid FROM pg_catalog.pg_event_trigger_ddl_commands()
        ), touched AS (
            SELECT objid AS oid FROM c
            WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
        )
        SELECT (SELECT pg_catalog.array_agg(oid) FROM touched),
               (SELECT pg_catalog.array_agg(objid) FROM c
                WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass),
               (SELECT pg_catalog.array_agg(oid) FROM (
                    SELECT oid FROM touched
                    UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i
                          WHERE i.inhrelid OPERATOR(pg_catalog.=) ANY (SELECT oid FROM touched)) x)
    )SQL");
    DdlCommands out;
    out.relations = r.first()[0].text().value_or("{}");
    out.schemas = r.first()[1].text().value_or("{}");
    out.related = r.first()[2].text().value_or("{}");
    return out;
}

void Store::sync_relation_names(const DdlCommands& commands) {
    // One statement, on the relations this command altered (or that live in the schema it
    // altered), and only on rows whose name, schema or owner changed: a role's DDL never touches,
    // and so never waits for, another role's definitions.
    const std::string& relations = commands.relations;
    const std::string& schemas = commands.schemas;
    if (relations == "{}" && schemas == "{}") return;
    AsExtensionOwner as;
    auto r = spi_.exec(R"SQL(
        UPDATE matviews.definitions d
           SET schema_name = n.nspname, view_name = c.relname,
               owner = pg_catalog.pg_get_userbyid(c.relowner), updated_at = pg_catalog.now()
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
         WHERE c.oid OPERATOR(pg_catalog.=) d.relid
           AND (c.oid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])
                OR c.relnamespace OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.oid[]))
           AND (d.schema_name OPERATOR(pg_catalog.<>) n.nspname
                OR d.view_name OPERATOR(pg_catalog.<>) c.relname
                OR d.owner OPERATOR(pg_catalog.<>) pg_catalog.pg_get_userbyid(c.relowner))
    )SQL",
                       {pg::Param::text(relations), pg::Param::text(schemas)});
    if (r.processed > 0) pg::wake_scheduler_at_commit(true);
}

void Store::on_sql_drop() {
    // pg_event_trigger_dropped_objects() lists what this command dropped; only relations count.
    auto r = spi_.exec(R"SQL(
        SELECT o.objid, pg_catalog.to_regclass('matviews.definitions') IS NULL
        FROM pg_catalog.pg_event_trigger_dropped_objects() o
        WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
          AND o.objsubid OPERATOR(pg_catalog.=) 0
    )SQL");
    std::vector<Oid> dropped;
    for (const auto& row : r.rows) {
        if (row[1].as_bool()) return;  // DROP EXTENSION matviews (or its schema)
        Oid relid = static_cast<Oid>(row[0].as_int());
        if (!ReplacingRelations::contains(relid)) dropped.push_back(relid);
    }
    if (!dropped.empty()) relations_dropped(dropped);
}

namespace {

// The definition's health after a refresh-like run (parameters $1-$5): a failure increments
// consecutive_failures; a success resets it, and a success with a watch read under the lock
// ($3, $4, $5) takes away what it saw: the view stays stale only if marks were applied after the
// read (their commits may be after the refresh's snapshot), and then since the read. With $1
// NULL it updates nothing.
constexpr const char* kHealthUpdate =
    "UPDATE matviews.definitions SET consecutive_failures = CASE WHEN $2 THEN 0 "
    "ELSE consecutive_failures OPERATOR(pg_catalog.+) 1 END, "
    "pending_changes = CASE WHEN NOT $2 OR $3 IS NULL THEN pending_changes "
    "ELSE pg_catalog.int8larger(pending_changes OPERATOR(pg_catalog.-) $4, 0) END, "
    "stale = CASE WHEN NOT $2 OR $3 IS NULL THEN stale "
    "ELSE change_seq OPERATOR(pg_catalog.<>) $3 END, "
    "stale_since = CASE WHEN NOT $2 OR $3 IS NULL THEN stale_since "
    "WHEN change_seq OPERATOR(pg_catalog.=) $3 THEN NULL "
    "ELSE pg_catalog.timestamptz_larger(COALESCE(stale_since, $5), $5) END "
    "WHERE id OPERATOR(pg_catalog.=) $1";

std::vector<pg::Param> health_params(const std::optional<RunOutcome::Health>& h) {
    const WatchSeen* seen = h && h->seen ? &*h->seen : nullptr;
    return {h ? pg::Param::int8(h->definition_id) : pg::Param::null(INT8OID),
            pg::Param::boolean(h && h->success),
            seen ? pg::Param::int8(seen->change_seq) : pg::Param::null(INT8OID),
            seen ? pg::Param::int8(seen->pending_changes) : pg::Param::null(INT8OID),
            seen ? pg::Param::timestamptz(seen->at) : pg::Param::null(TIMESTAMPTZOID)};
}

}  // namespace

void Store::record_outcome(int64_t id, bool success, const std::optional<WatchSeen>& seen) {
    AsExtensionOwner as;
    spi_.exec(kHealthUpdate, health_params(RunOutcome::Health{id, success, seen}));
}

int64_t Store::insert_run(const RunOutcome& r) {
    // One statement: the run, and its definition's health.
    AsExtensionOwner as;
    std::vector<pg::Param> params = health_params(r.health);
    for (auto& p : std::vector<pg::Param>{
             pg::Param::text(r.view), pg::Param::opt_int8(r.definition_id),
             pg::Param::text(r.operation), pg::Param::opt_text(r.strategy),
             pg::Param::text(r.status), pg::Param::text(r.trigger),
             pg::Param::timestamptz(r.started_at), pg::Param::float8(r.duration_ms),
             pg::Param::opt_int8(r.row_count_before), pg::Param::opt_int8(r.row_count_after),
             r.error ? pg::Param::jsonb(*r.error) : pg::Param::null(JSONBOID),
             pg::Param::text(as.caller()),
             r.owner.empty() ? pg::Param::null(TEXTOID) : pg::Param::text(r.owner),
             pg::Param::int4(pg::backend_pid()), pg::Param::jsonb(r.meta)})
        params.push_back(p);
    auto v = spi_.scalar(
        fmt::format("WITH health AS ({}) "
                    "INSERT INTO matviews.runs (view, definition_id, operation, strategy, status, "
                    "trigger, started_at, finished_at, duration_ms, row_count_before, "
                    "row_count_after, error, role, owner, pid, meta) "
                    "VALUES ($6, $7, $8, $9, $10, $11, $12, pg_catalog.clock_timestamp(), $13, "
                    "$14, $15, $16, $17::pg_catalog.name, "
                    "COALESCE($18::pg_catalog.name, $17::pg_catalog.name), $19, $20) "
                    "RETURNING id",
                    kHealthUpdate),
        params);
    return v.as_int();
}

Store::Enqueued Store::enqueue_run(const std::string& view, Oid relid,
                                   std::optional<int64_t> definition_id,
                                   const std::string& operation,
                                   const std::optional<std::string>& strategy, int64_t run_at,
                                   const std::string& owner, const Json& request) {
    // INSERT a queued run, as the caller (runs.role) for the view's owner, bound to the relation,
    // or coalesce into the one already queued (runs_one_queued_request). A concurrent enqueuer's
    // uncommitted run makes this wait for its transaction, as any upsert does, and then coalesce.
    AsExtensionOwner as;
    Json meta = Json::object();
    meta.set("request", request);
    auto r = spi_.exec(
        "INSERT INTO matviews.runs AS r (view, relid, definition_id, operation, strategy, status, "
        "trigger, run_at, role, owner, meta) "
        "VALUES ($1, $2::pg_catalog.regclass, $3, $4, $5, 'queued', 'queue', $6, "
        "$7::pg_catalog.name, $8::pg_catalog.name, $9) "
        "ON CONFLICT (relid, operation, (COALESCE(strategy, ''))) "
        "WHERE status OPERATOR(pg_catalog.=) 'queued' AND trigger OPERATOR(pg_catalog.=) 'queue' "
        "DO UPDATE SET run_at = LEAST(r.run_at, EXCLUDED.run_at) "
        "RETURNING r.id, r.xmax::pg_catalog.text OPERATOR(pg_catalog.<>) '0'",
        {pg::Param::text(view), pg::Param::oid(relid), pg::Param::opt_int8(definition_id),
         pg::Param::text(operation), pg::Param::opt_text(strategy), pg::Param::timestamptz(run_at),
         pg::Param::text(as.caller()), pg::Param::text(owner), pg::Param::jsonb(meta)});
    pg::wake_scheduler_at_commit(false);
    return Enqueued{r.first()[0].as_int(), r.first()[1].as_bool()};
}

std::optional<Store::QueuedRun> Store::claim_queued_run(int64_t id) {
    // queued -> running, in this backend. A run that lost its relation is not claimed.
    AsExtensionOwner as;
    auto r = spi_.exec(
        "SELECT view, relid::pg_catalog.oid, owner::pg_catalog.text, operation, strategy, "
        "trigger FROM matviews.runs "
        "WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'queued' FOR UPDATE",
        {pg::Param::int8(id)});
    if (r.empty() || r.first()[1].is_null()) return std::nullopt;
    const auto& row = r.first();
    QueuedRun q{row[0].text().value_or(""),
                static_cast<Oid>(row[1].as_int()),
                row[2].text().value_or(""),
                row[3].text().value_or("refresh"),
                row[4].text(),
                row[5].text().value_or("queue")};
    spi_.exec(
        "UPDATE matviews.runs SET status = 'running', started_at = pg_catalog.clock_timestamp(), "
        "pid = $2, attempt = attempt OPERATOR(pg_catalog.+) 1 WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id), pg::Param::int4(pg::backend_pid())});
    return q;
}

void Store::finish_run(const RunOutcome& r) {
    // Final state, timings, counts, error and meta, and the definition's health, in one
    // statement; the run no longer needs its relation.
    AsExtensionOwner as;
    std::optional<std::string> owner;
    if (!r.owner.empty()) owner = r.owner;
    std::vector<pg::Param> params = health_params(r.health);
    for (auto& p : std::vector<pg::Param>{
             pg::Param::int8(r.id), pg::Param::text(r.view), pg::Param::opt_int8(r.definition_id),
             pg::Param::opt_text(r.strategy), pg::Param::text(r.status),
             pg::Param::float8(r.duration_ms), pg::Param::opt_int8(r.row_count_before),
             pg::Param::opt_int8(r.row_count_after),
             r.error ? pg::Param::jsonb(*r.error) : pg::Param::null(JSONBOID),
             pg::Param::jsonb(r.meta), pg::Param::opt_text(owner)})
        params.push_back(p);
    spi_.exec(fmt::format("WITH health AS ({}) "
                          "UPDATE matviews.runs SET view = $7, definition_id = $8, strategy = $9, "
                          "status = $10, finished_at = pg_catalog.clock_timestamp(), "
                          "duration_ms = $11, row_count_before = $12, row_count_after = $13, "
                          "error = $14, meta = meta OPERATOR(pg_catalog.||) $15, "
                          "owner = COALESCE($16::pg_catalog.name, owner), relid = NULL "
                          "WHERE id OPERATOR(pg_catalog.=) $6",
                          kHealthUpdate),
              params);
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

std::optional<Store::RunState> Store::run_state(int64_t id) {
    // As the caller: row-level security decides whether the run is visible. Every column may be
    // null in a row written by hand or an older version; none of that is an internal error.
    auto r = spi_.exec(
        "SELECT status, view, operation, strategy, trigger, meta, error FROM matviews.runs "
        "WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id)});
    if (r.empty()) return std::nullopt;
    const auto& row = r.first();
    RunState s;
    s.status = row[0].text().value_or("");
    s.view = row[1].text().value_or("");
    s.operation = row[2].text().value_or("");
    s.strategy = row[3].text();
    s.trigger = row[4].text().value_or("");
    if (!row[5].is_null())
        if (const Json* resp = row[5].as_json().find("response")) s.response = *resp;
    if (!row[6].is_null()) s.error = row[6].as_json();
    return s;
}

std::optional<std::string> Store::run_status(int64_t id) {
    auto r = spi_.exec("SELECT status FROM matviews.runs WHERE id OPERATOR(pg_catalog.=) $1",
                       {pg::Param::int8(id)});
    if (r.empty()) return std::nullopt;
    return r.first()[0].text().value_or("");
}

Oid Store::run_relid(int64_t id) {
    // In a new snapshot: the swap that moved the run committed after this transaction began.
    AsExtensionOwner as;
    auto r = spi_.exec(
        "SELECT relid::pg_catalog.oid FROM matviews.runs WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id)});
    if (r.empty() || r.first()[0].is_null()) return InvalidOid;
    return static_cast<Oid>(r.first()[0].as_int());
}

std::optional<Store::RunControl> Store::run_control(int64_t id) {
    // As the caller, so a run the caller cannot see does not exist for it.
    auto r = spi_.exec(
        "SELECT status, view, owner::pg_catalog.text, pid FROM matviews.runs "
        "WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id)});
    if (r.empty()) return std::nullopt;
    const auto& row = r.first();
    RunControl c;
    c.status = row[0].text().value_or("");
    c.view = row[1].text().value_or("");
    c.owner = row[2].text().value_or("");
    if (!row[3].is_null()) c.pid = row[3].as_int();
    return c;
}

bool Store::cancel_queued_run(int64_t id) {
    AsExtensionOwner as;
    Json error = Json::object();
    error.set("message", "canceling the run due to user request");
    error.set("sqlstate", "57014");
    error.set("detail", fmt::format("Cancelled by role {} with matviews.cancel() while queued.",
                                    as.caller()));
    error.set("hint", Json());
    auto r = spi_.exec(
        "UPDATE matviews.runs SET status = 'cancelled', finished_at = "
        "pg_catalog.clock_timestamp(), relid = NULL, error = $2 "
        "WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'queued' "
        "RETURNING id",
        {pg::Param::int8(id), pg::Param::jsonb(error)});
    if (!r.empty()) pg::wake_scheduler_at_commit(false);
    return !r.empty();
}

bool Store::is_job_of_run(int pid, int64_t id) {
    AsExtensionOwner as;
    auto r = spi_.exec(
        "SELECT 1 FROM matviews.runs r JOIN pg_catalog.pg_stat_activity a "
        "ON a.pid OPERATOR(pg_catalog.=) r.pid "
        "WHERE r.id OPERATOR(pg_catalog.=) $1 AND r.pid OPERATOR(pg_catalog.=) $2 "
        "AND r.status OPERATOR(pg_catalog.=) 'running' "
        "AND a.backend_type OPERATOR(pg_catalog.=) 'matviews job'",
        {pg::Param::int8(id), pg::Param::int4(pid)});
    return !r.empty();
}

void Store::end_interrupted_run(int64_t id, bool cancelled, const Json& error) {
    AsExtensionOwner as;
    spi_.exec(
        "UPDATE matviews.runs SET status = $2, finished_at = pg_catalog.clock_timestamp(), "
        "duration_ms = pg_catalog.round((EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() "
        "OPERATOR(pg_catalog.-) started_at) OPERATOR(pg_catalog.*) 1000)::pg_catalog.numeric, "
        "3)::pg_catalog.float8, relid = NULL, error = $3 "
        "WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'running'",
        {pg::Param::int8(id), pg::Param::text(cancelled ? "cancelled" : "failed"),
         pg::Param::jsonb(error)});
}

void Store::execute(const std::string& sql) {
    spi_.exec(sql);
}

void Store::execute_owner_code(const std::string& sql,
                               const std::optional<std::string>& search_path) {
    spi_.exec_owner_code(sql, search_path);
}

}  // namespace mv::catalog
