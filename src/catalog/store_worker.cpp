// The catalog gateway's statements for the background processes (see store.hpp): the scheduler's
// view of definitions and queued runs, the runs it inserts and fails, recovery and pruning, and
// who a job runs as. Like every statement of the gateway they run with search_path pinned, every
// operator and function qualified and every value bound: the scheduler connects as the bootstrap
// superuser, so no role's schema may ever resolve anything here.
#include "catalog/store.hpp"
#include "catalog/store_internal.hpp"

#include "boundary/timezone.hpp"

namespace mv::catalog {

namespace {

std::optional<int64_t> opt_time(const pg::Value& v) {
    // A time read as Unix-epoch microseconds (the scheduling core's TimePoint), or nullopt.
    if (v.is_null()) return std::nullopt;
    return static_cast<int64_t>(v.as_double());
}

}  // namespace

bool Store::extension_installed() {
    auto r = spi_.exec(
        "SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'matviews'");
    return !r.empty();
}

bool Store::schema_current() {
    auto v = spi_.scalar(
        "SELECT extversion FROM pg_catalog.pg_extension "
        "WHERE extname OPERATOR(pg_catalog.=) 'matviews'");
    return !v.is_null() && v.as_string() == kSchemaVersion;
}

std::string Store::effective_strategy(int64_t run_id, const std::optional<std::string>& requested) {
    if (requested) return *requested;
    AsExtensionOwner as;
    auto v = spi_.scalar(
        "SELECT d.refresh_strategy FROM matviews.runs r JOIN matviews.definitions d "
        "ON d.id OPERATOR(pg_catalog.=) r.definition_id WHERE r.id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(run_id)});
    return v.is_null() ? std::string("regular") : v.as_string();
}

std::optional<int64_t> Store::insert_scheduled_run(int64_t definition_id, int64_t due,
                                                   const std::string& kind, int attempt) {
    // Bound to the definition's relation; a detached definition has nothing to refresh.
    AsExtensionOwner as;
    auto r = spi_.exec(
        "INSERT INTO matviews.runs (view, relid, definition_id, operation, strategy, status, "
        "trigger, run_at, role, owner, attempt, meta) "
        "SELECT pg_catalog.format('%I.%I', d.schema_name, d.view_name), d.relid, d.id, "
        "'refresh', d.refresh_strategy, 'queued', 'schedule', $2::pg_catalog.timestamptz, "
        "d.owner, d.owner, 0, pg_catalog.jsonb_build_object('kind', $3::pg_catalog.text, "
        "'retry', $4::pg_catalog.int4) FROM matviews.definitions d "
        "WHERE d.id OPERATOR(pg_catalog.=) $1 AND d.relid IS NOT NULL RETURNING id",
        {pg::Param::int8(definition_id), pg::Param::timestamptz(pg::to_timestamptz(due)),
         pg::Param::text(kind), pg::Param::int4(attempt)});
    if (r.empty()) return std::nullopt;
    return r.first()[0].as_int();
}

std::optional<JobIdentity> Store::job_identity(int64_t run_id, bool scheduled) {
    // The relation the run is bound to, by OID, and its owner; a queued run also needs the owner
    // to be the one it was queued for (runs.owner), so a run never acts for a role that did not
    // own the view when the run was queued. Connecting as the owner needs LOGIN, CONNECT on this
    // database and no connection limit; otherwise the job connects as the bootstrap superuser and
    // switches to the owner.
    AsExtensionOwner as;
    auto r = spi_.exec(
        "SELECT c.relowner, a.rolcanlogin AND a.rolconnlimit OPERATOR(pg_catalog.<) 0 "
        "AND pg_catalog.has_database_privilege(c.relowner, pg_catalog.current_database(), "
        "'CONNECT'), a.rolname::pg_catalog.text, r.view "
        "FROM matviews.runs r "
        "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relid "
        "JOIN pg_catalog.pg_authid a ON a.oid OPERATOR(pg_catalog.=) c.relowner "
        "WHERE r.id OPERATOR(pg_catalog.=) $1 AND c.relkind OPERATOR(pg_catalog.=) 'm' "
        "AND ($2 OR a.rolname OPERATOR(pg_catalog.=) r.owner)",
        {pg::Param::int8(run_id), pg::Param::boolean(scheduled)});
    if (r.empty()) return std::nullopt;
    const auto& row = r.first();
    JobIdentity id;
    id.owner = static_cast<Oid>(row[0].as_int());
    id.can_connect = !row[1].is_null() && row[1].as_bool();
    id.owner_name = row[2].text().value_or("");
    spi_.exec(
        "UPDATE matviews.runs SET owner = $2::pg_catalog.name, role = CASE WHEN trigger "
        "OPERATOR(pg_catalog.=) 'queue' THEN role ELSE $2::pg_catalog.name END "
        "WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(run_id), pg::Param::text(id.owner_name)});
    return id;
}

void Store::delete_run(int64_t run_id) {
    AsExtensionOwner as;
    spi_.exec("DELETE FROM matviews.runs WHERE id OPERATOR(pg_catalog.=) $1",
              {pg::Param::int8(run_id)});
}

void Store::fail_run(int64_t run_id, const Json& error) {
    // Counted in consecutive_failures for a refresh or swap of a managed view, as the runner
    // counts runs that reach it.
    AsExtensionOwner as;
    auto r = spi_.exec(
        "UPDATE matviews.runs SET status = 'failed', started_at = COALESCE(started_at, "
        "pg_catalog.now()), finished_at = pg_catalog.clock_timestamp(), error = $2, relid = NULL "
        "WHERE id OPERATOR(pg_catalog.=) $1 RETURNING definition_id, operation",
        {pg::Param::int8(run_id), pg::Param::jsonb(error)});
    if (r.empty() || r.first()[0].is_null()) return;
    std::string operation = r.first()[1].text().value_or("");
    if (operation != "refresh" && operation != "swap") return;
    record_outcome(r.first()[0].as_int(), false, std::nullopt);
}

std::vector<Store::Interrupted> Store::interrupted_runs(int64_t since) {
    // Running, and started before this server began serving, or whose process is gone.
    AsExtensionOwner as;
    auto r =
        spi_.exec(R"SQL(
        SELECT r.id, r.started_at OPERATOR(pg_catalog.<) $1
        FROM matviews.runs r
        WHERE r.status OPERATOR(pg_catalog.=) 'running'
          AND ((r.started_at OPERATOR(pg_catalog.<) $1) IS TRUE
               OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                              WHERE a.pid OPERATOR(pg_catalog.=) r.pid))
        ORDER BY r.id
    )SQL",
                  {since > 0 ? pg::Param::timestamptz(since) : pg::Param::null(TIMESTAMPTZOID)});
    std::vector<Interrupted> out;
    for (const auto& row : r.rows)
        out.push_back({row[0].as_int(), !row[1].is_null() && row[1].as_bool()});
    return out;
}

std::optional<std::pair<std::string, int64_t>> Store::run_outcome(int64_t run_id) {
    AsExtensionOwner as;
    auto r = spi_.exec(
        "SELECT status, pg_catalog.date_part('epoch', COALESCE(finished_at, pg_catalog.now())) "
        "OPERATOR(pg_catalog.*) 1000000::pg_catalog.float8 "
        "FROM matviews.runs WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(run_id)});
    if (r.empty()) return std::nullopt;
    return std::make_pair(r.first()[0].text().value_or(""),
                          static_cast<int64_t>(r.first()[1].as_double()));
}

std::vector<Store::ScheduledEntry> Store::scheduler_definitions() {
    // Every scheduled definition bound to a relation, with its run history and the relation's
    // owner; each row converted on its own.
    AsExtensionOwner as;
    auto r = spi_.exec(R"SQL(
        SELECT d.id, pg_catalog.format('%I.%I', d.schema_name, d.view_name), d.schedule,
               d.enabled, d.options, d.consecutive_failures,
               (SELECT pg_catalog.date_part('epoch', pg_catalog.max(r.started_at))
                       OPERATOR(pg_catalog.*) 1000000::pg_catalog.float8
                  FROM matviews.runs r WHERE r.definition_id OPERATOR(pg_catalog.=) d.id
                   AND r.trigger OPERATOR(pg_catalog.=) 'schedule'),
               (SELECT pg_catalog.date_part('epoch', pg_catalog.max(r.finished_at))
                       OPERATOR(pg_catalog.*) 1000000::pg_catalog.float8
                  FROM matviews.runs r WHERE r.definition_id OPERATOR(pg_catalog.=) d.id
                   AND r.operation OPERATOR(pg_catalog.=) ANY ('{refresh,swap,create}'::pg_catalog.text[])
                   AND r.status OPERATOR(pg_catalog.=) ANY ('{success,failed}'::pg_catalog.text[])),
               c.relowner
        FROM matviews.definitions d
        LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.relid
        WHERE d.schedule IS NOT NULL AND d.relid IS NOT NULL
        ORDER BY d.id
    )SQL");
    std::vector<ScheduledEntry> out;
    for (const auto& row : r.rows) {
        if (row[0].is_null() || row[2].is_null()) continue;
        ScheduledEntry e;
        e.row.id = row[0].as_int();
        e.row.view = row[1].text().value_or("");
        try {
            e.row.schedule = row[2].as_string();
            e.row.enabled = row[3].is_null() || row[3].as_bool();
            e.row.options = row[4].is_null() ? Json::object() : row[4].as_json();
            if (!e.row.options.is_object())
                throw Error("22023", "definition options are not a JSON object");
            e.row.consecutive_failures = row[5].is_null() ? 0 : static_cast<int>(row[5].as_int());
            if (auto t = opt_time(row[6])) e.row.last_started = *t;
            if (auto t = opt_time(row[7])) e.row.last_finished = *t;
            e.owner = row[8].is_null() ? InvalidOid : static_cast<Oid>(row[8].as_int());
        } catch (const Error& err) {
            e.error = err.what();
        }
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<Store::QueuedEntry> Store::scheduler_queued_runs() {
    // queued_runs' rows with the owner the job will run as: the bound relation's, else the
    // role the run records (its job then fails on its own).
    AsExtensionOwner as;
    auto r = spi_.exec(R"SQL(
        SELECT r.id, r.view, r.definition_id, r.relid::pg_catalog.oid,
               pg_catalog.date_part('epoch', COALESCE(r.run_at, r.started_at, pg_catalog.now()))
               OPERATOR(pg_catalog.*) 1000000::pg_catalog.float8,
               COALESCE(c.relowner, a.oid)
        FROM matviews.runs r
        LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relid
        LEFT JOIN pg_catalog.pg_authid a ON a.rolname OPERATOR(pg_catalog.=) r.owner
        WHERE r.status OPERATOR(pg_catalog.=) 'queued' ORDER BY r.id
    )SQL");
    std::vector<QueuedEntry> out;
    out.reserve(r.rows.size());
    for (const auto& row : r.rows) {
        QueuedEntry e;
        try {
            e.row.id = row[0].as_int();
            e.row.view = row[1].text().value_or("");
            if (!row[2].is_null()) e.row.definition_id = row[2].as_int();
            e.row.relid = row[3].is_null() ? InvalidOid : static_cast<Oid>(row[3].as_int());
            e.row.due = static_cast<int64_t>(row[4].as_double());
            e.owner = row[5].is_null() ? InvalidOid : static_cast<Oid>(row[5].as_int());
        } catch (const Error& err) {
            e.error = err.what();
        }
        out.push_back(std::move(e));
    }
    return out;
}

int64_t Store::tables_change_marker() {
    // Inserted, updated and deleted row counts of both tables, as the statistics system has
    // them (flushed by each backend within about a second).
    AsExtensionOwner as;
    auto v = spi_.scalar(R"SQL(
        SELECT COALESCE(pg_catalog.sum(pg_catalog.pg_stat_get_tuples_inserted(c.oid)
                   OPERATOR(pg_catalog.+) pg_catalog.pg_stat_get_tuples_updated(c.oid)
                   OPERATOR(pg_catalog.+) pg_catalog.pg_stat_get_tuples_deleted(c.oid)), 0)::pg_catalog.int8
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        WHERE n.nspname OPERATOR(pg_catalog.=) 'matviews'
          AND c.relname OPERATOR(pg_catalog.=) ANY ('{definitions,runs}'::pg_catalog.name[])
    )SQL");
    return v.is_null() ? 0 : v.as_int();
}

void Store::prune_runs(double retention_s) {
    AsExtensionOwner as;
    spi_.exec(
        "DELETE FROM matviews.runs WHERE status OPERATOR(pg_catalog.<>) ALL "
        "('{queued,running}'::pg_catalog.text[]) "
        "AND finished_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) "
        "pg_catalog.make_interval(secs => $1))",
        {pg::Param::float8(retention_s)});
}

void Store::write_next_run_times(
    const std::vector<std::pair<int64_t, std::optional<int64_t>>>& next) {
    AsExtensionOwner as;
    for (const auto& [id, at] : next)
        spi_.exec(
            "UPDATE matviews.definitions SET next_run_at = $2 "
            "WHERE id OPERATOR(pg_catalog.=) $1 AND schedule IS NOT NULL",
            {pg::Param::int8(id), at ? pg::Param::timestamptz(pg::to_timestamptz(*at))
                                     : pg::Param::null(TIMESTAMPTZOID)});
}

int64_t Store::interval_us(const std::string& interval) {
    auto v = spi_.scalar(
        "SELECT pg_catalog.date_part('epoch', $1::pg_catalog.interval) OPERATOR(pg_catalog.*) "
        "1000000::pg_catalog.float8",
        {pg::Param::text(interval)});
    return static_cast<int64_t>(v.as_double());
}

void Store::relax_commit() {
    spi_.exec("SET LOCAL synchronous_commit = off");
}

}  // namespace mv::catalog
