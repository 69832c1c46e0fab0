// The catalog side of watches (see store.hpp, "watches"): which relations a view reads, the
// statement triggers on its tables, the marks the scheduler applies to definitions when those
// tables change, and the watch runs it queues. A writer never runs any of this: its trigger only
// notes the table in its own backend (boundary/capture.hpp).
#include "catalog/store.hpp"
#include "catalog/store_internal.hpp"

#include "boundary/scopes.hpp"
#include "catalog/relation.hpp"
#include "boundary/subxact.hpp"
#include "boundary/wakeup.hpp"

namespace mv::catalog {

namespace {

// A set of statement triggers matviews puts on a table: a watch's (one, which notes the change)
// or an incremental view's capture (one per event: transition tables allow only one), each with
// its name, matviews' function (as a regprocedure the catalogs compare with tgfoid), and the
// definitions that still need them.
struct TriggerSpec {
    const char* name;
    const char* function;
    const char* events;       // the CREATE TRIGGER text between the name and ON
    const char* referencing;  // its REFERENCING clause, after ON
    const char* used_by;      // SQL: a definition d that needs triggers on table t.tgrelid
    const char* purpose;      // for messages: "watch", "capture changes of"
};

constexpr const char* kWatchUsed =
    "d.watch_min_interval IS NOT NULL "
    "AND t.tgrelid OPERATOR(pg_catalog.=) ANY (d.watch_relids::pg_catalog.oid[])";
constexpr const char* kCaptureUsed =
    "d.refresh_strategy OPERATOR(pg_catalog.=) 'incremental' "
    "AND t.tgrelid OPERATOR(pg_catalog.=) ANY (d.inc_relids)";
constexpr const char* kWatchFunction = "'matviews._on_change()'::pg_catalog.regprocedure";
constexpr const char* kCaptureFunction = "'matviews._capture()'::pg_catalog.regprocedure";

const TriggerSpec kWatchTriggers[] = {
    {"matviews_watch", kWatchFunction, "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE", "",
     kWatchUsed, "watch"},
};
const TriggerSpec kCaptureTriggers[] = {
    {"matviews_capture_ins", kCaptureFunction, "AFTER INSERT", "REFERENCING NEW TABLE AS mv_new",
     kCaptureUsed, "capture changes of"},
    {"matviews_capture_upd", kCaptureFunction, "AFTER UPDATE",
     "REFERENCING OLD TABLE AS mv_old NEW TABLE AS mv_new", kCaptureUsed, "capture changes of"},
    {"matviews_capture_del", kCaptureFunction, "AFTER DELETE", "REFERENCING OLD TABLE AS mv_old",
     kCaptureUsed, "capture changes of"},
    {"matviews_capture_trunc", kCaptureFunction, "AFTER TRUNCATE", "", kCaptureUsed,
     "capture changes of"},
};

std::string int_array(const std::vector<int64_t>& v) {
    // An array parameter as text; the statement casts it.
    std::string text = "{";
    for (size_t i = 0; i < v.size(); i++) text += (i ? "," : "") + std::to_string(v[i]);
    return text + "}";
}

[[noreturn]] void throw_catalog_source(const std::string& quoted) {
    throw Error(sqlstate::feature_not_supported,
                fmt::format("cannot watch a view that reads the system catalog {}", quoted))
        .detail("Changes to system catalogs fire no triggers, so a watch would never see them.")
        .hint("Refresh it on a schedule instead (matviews.schedule).");
}

}  // namespace

std::vector<WatchSource> Store::watch_sources(Oid view) {
    // pg_depend from each rewrite rule to the relations it reads, recursively through plain
    // views, and pg_inherits from each table to its partitions and children. UNION keeps one row
    // per (relation, depth); the depth cap stops a cycle of plain views.
    auto r = spi_.exec(R"SQL(
        WITH RECURSIVE src(oid, depth) AS (
            SELECT d.refobjid, 1
            FROM pg_catalog.pg_rewrite rw
            JOIN pg_catalog.pg_depend d
              ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
             AND d.objid OPERATOR(pg_catalog.=) rw.oid
             AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
            WHERE rw.ev_class OPERATOR(pg_catalog.=) $1 AND d.refobjid OPERATOR(pg_catalog.<>) $1
          UNION
            SELECT nxt.oid, src.depth OPERATOR(pg_catalog.+) 1
            FROM src
            JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) src.oid
            CROSS JOIN LATERAL (
                SELECT d.refobjid AS oid
                FROM pg_catalog.pg_rewrite rw
                JOIN pg_catalog.pg_depend d
                  ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                 AND d.objid OPERATOR(pg_catalog.=) rw.oid
                 AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                WHERE c.relkind OPERATOR(pg_catalog.=) 'v'
                  AND rw.ev_class OPERATOR(pg_catalog.=) c.oid
                  AND d.refobjid OPERATOR(pg_catalog.<>) c.oid
              UNION ALL
                SELECT i.inhrelid FROM pg_catalog.pg_inherits i
                WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.char[])
                  AND i.inhparent OPERATOR(pg_catalog.=) c.oid
            ) nxt
            WHERE src.depth OPERATOR(pg_catalog.<) 100
        )
        SELECT DISTINCT c.oid, c.relkind::pg_catalog.text,
               pg_catalog.format('%I.%I', n.nspname, c.relname),
               c.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid,
               n.nspname OPERATOR(pg_catalog.=) 'matviews'
        FROM src
        JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) src.oid
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,f}'::pg_catalog.char[])
        ORDER BY 1
    )SQL",
                       {pg::Param::oid(view)});
    std::vector<WatchSource> out;
    std::vector<int64_t> rules_of{static_cast<int64_t>(view)};
    for (const auto& row : r.rows)
        if (row[1].as_string() == "v") rules_of.push_back(row[0].as_int());
    // PostgreSQL records no dependency on a pinned catalog (pg_class, ...): those are found in
    // the rules' range tables themselves.
    auto pinned = spi_.exec(R"SQL(
        SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
        FROM pg_catalog.pg_rewrite rw
        CROSS JOIN LATERAL pg_catalog.regexp_matches(rw.ev_action::pg_catalog.text,
                                                     ':relid (\d+)', 'g') m
        JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) m[1]::pg_catalog.oid
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        WHERE rw.ev_class OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])
          AND c.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid
        ORDER BY 1 LIMIT 1
    )SQL",
                            {pg::Param::text(int_array(rules_of))});
    if (!pinned.empty()) throw_catalog_source(pinned.first()[0].as_string());
    for (const auto& row : r.rows) {
        WatchSource s;
        s.relid = static_cast<Oid>(row[0].as_int());
        s.relkind = row[1].as_string().empty() ? '?' : row[1].as_string()[0];
        s.quoted = row[2].as_string();
        if (row[3].as_bool()) throw_catalog_source(s.quoted);
        if (row[4].as_bool())
            throw Error(
                sqlstate::feature_not_supported,
                fmt::format("cannot watch a view that reads {}, a table of matviews", s.quoted))
                .detail(
                    "matviews writes its own tables on every operation: the view would be "
                    "stale again after each of its refreshes.")
                .hint("Refresh it on a schedule instead (matviews.schedule).");
        if (s.relkind == 'f')
            throw Error(
                sqlstate::feature_not_supported,
                fmt::format("cannot watch a view that reads the foreign table {}", s.quoted))
                .detail(
                    "Changes to a foreign table happen on another server, where no trigger of "
                    "this database sees them.")
                .hint("Refresh it on a schedule instead (matviews.schedule).");
        out.push_back(std::move(s));
    }
    return out;
}

int Store::install_watch_triggers(const std::vector<WatchSource>& sources, Oid owner,
                                  const std::string& owner_name, bool wait) {
    std::vector<std::pair<Oid, std::string>> tables;
    for (const auto& s : sources)
        if (s.relkind == 'r' || s.relkind == 'p') tables.emplace_back(s.relid, s.quoted);
    return install_triggers(tables, owner, owner_name, wait, false);
}

int Store::install_capture_triggers(const std::vector<Oid>& tables, Oid owner,
                                    const std::string& owner_name) {
    std::vector<std::pair<Oid, std::string>> named;
    for (Oid t : tables) named.emplace_back(t, std::to_string(t));
    return install_triggers(named, owner, owner_name, true, true);
}

int Store::install_triggers(const std::vector<std::pair<Oid, std::string>>& tables, Oid owner,
                            const std::string& owner_name, bool wait, bool capture) {
    // For each table, by OID: lock it as CREATE TRIGGER would, also when the triggers are there
    // already (so a collector cannot drop them before this commits), then read its name and
    // state under the lock: ours already there, someone else's of that name (42710), or create
    // it as the owner in a security-restricted operation, after checking the TRIGGER privilege
    // so the refusal can say which GRANT is missing (PostgreSQL checks it again).
    int created = 0;
    const TriggerSpec* specs = capture ? kCaptureTriggers : kWatchTriggers;
    size_t nspecs = capture ? std::size(kCaptureTriggers) : std::size(kWatchTriggers);
    for (const auto& [relid, quoted] : tables) {
        switch (pg::lock_relation_for_ddl(relid, false, wait)) {
            case pg::LockResult::gone:
                continue;  // dropped meanwhile: its views are gone with it (or changed)
            case pg::LockResult::busy:
                throw Error(sqlstate::lock_not_available,
                            fmt::format("could not lock table {} to put the {} trigger on it",
                                        quoted, specs[0].name))
                    .hint("Another session holds a lock on it; the worker tries again later.");
            case pg::LockResult::locked:
                break;
        }
        for (size_t k = 0; k < nspecs; k++) {
            const TriggerSpec& spec = specs[k];
            std::optional<bool> ours;
            bool allowed = false;
            std::string table;
            Oid table_owner = InvalidOid;
            bool always = false;
            {
                AsExtensionOwner as;
                auto r = spi_.exec(
                    fmt::format("SELECT (SELECT t.tgfoid OPERATOR(pg_catalog.=) {} "
                                "FROM pg_catalog.pg_trigger t "
                                "WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 "
                                "AND t.tgname OPERATOR(pg_catalog.=) $2), "
                                "(SELECT t.tgenabled OPERATOR(pg_catalog.=) 'A' "
                                "FROM pg_catalog.pg_trigger t "
                                "WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 "
                                "AND t.tgname OPERATOR(pg_catalog.=) $2), "
                                "pg_catalog.has_table_privilege($3, $1, 'TRIGGER'), "
                                "pg_catalog.format('%I.%I', n.nspname, c.relname), c.relowner "
                                "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                                "ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
                                "WHERE c.oid OPERATOR(pg_catalog.=) $1",
                                spec.function),
                    {pg::Param::oid(relid), pg::Param::text(spec.name), pg::Param::oid(owner)});
                if (r.empty()) break;
                if (!r.first()[0].is_null()) ours = r.first()[0].as_bool();
                always = !r.first()[1].is_null() && r.first()[1].as_bool();
                allowed = r.first()[2].as_bool();
                table = r.first()[3].as_string();
                table_owner = static_cast<Oid>(r.first()[4].as_int());
            }
            // The owner's TRIGGER privilege counts even when the trigger is there already
            // (another view put it on): it is the owner's trigger on the table.
            if (!allowed)
                throw Error(sqlstate::insufficient_privilege,
                            fmt::format("permission denied to {} table {}", spec.purpose, table))
                    .detail(fmt::format("matviews puts statement triggers on every table the "
                                        "view reads, as the view's owner, role \"{}\".",
                                        owner_name))
                    .hint(fmt::format("GRANT TRIGGER ON {} TO {}; (by the table's owner)", table,
                                      pg::quote_ident(owner_name)));
            // A capture fires for replicated writes too (session_replication_role = replica)
            // when the view's owner owns the table and so may say so (ENABLE ALWAYS); matviews
            // never runs DDL as another table owner on the view owner's behalf.
            const bool make_always = capture && table_owner == owner && !always;
            if (ours && *ours) {
                if (make_always) {
                    pg::RoleScope as_owner(owner, true);
                    spi_.exec(
                        fmt::format("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}", table, spec.name));
                }
                continue;
            }
            if (ours)
                throw Error(
                    sqlstate::duplicate_object,
                    fmt::format("table {} already has a trigger named {}", table, spec.name))
                    .detail(fmt::format("matviews puts its own statement trigger of that name "
                                        "on every table a view it must {} reads.",
                                        capture ? "refresh incrementally" : "watch"))
                    .hint(fmt::format("Rename that trigger (ALTER TRIGGER {} ON {} RENAME TO "
                                      "...), then {} again.",
                                      spec.name, table, capture ? "try" : "watch"));
            {
                pg::RoleScope as_owner(owner, true);
                spi_.exec(
                    fmt::format("CREATE TRIGGER {} {} ON {} {} FOR EACH STATEMENT EXECUTE "
                                "FUNCTION {}",
                                spec.name, spec.events, table, spec.referencing,
                                capture ? "matviews._capture()" : "matviews._on_change()"));
            }
            if (make_always) {
                pg::RoleScope as_owner(owner, true);
                spi_.exec(fmt::format("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}", table, spec.name));
            }
            created++;
        }
    }
    return created;
}

void Store::set_watch(int64_t id, const std::optional<std::string>& min_interval,
                      const std::vector<Oid>& relids) {
    // A new or changed watch starts stale (once): whatever changed before it is not known.
    AsExtensionOwner as;
    std::vector<int64_t> ids(relids.begin(), relids.end());
    spi_.exec(
        "UPDATE matviews.definitions SET watch_min_interval = $2::pg_catalog.interval, "
        "watch_relids = CASE WHEN $2 IS NULL THEN NULL "
        "ELSE $3::pg_catalog.oid[]::pg_catalog.regclass[] END, "
        "stale = $2 IS NOT NULL, "
        "stale_since = CASE WHEN $2 IS NULL THEN NULL "
        "ELSE COALESCE(stale_since, pg_catalog.now()) END, "
        "pending_changes = CASE WHEN $2 IS NULL THEN 0 ELSE pending_changes END, "
        "change_seq = change_seq OPERATOR(pg_catalog.+) 1, updated_at = pg_catalog.now() "
        "WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id), pg::Param::opt_text(min_interval), pg::Param::text(int_array(ids))});
    // A watch run queued under the old watch would keep its old due time (an hour ahead, say)
    // and hold back the new one: it is cancelled, and the scheduler queues one for the new watch.
    spi_.exec(
        "UPDATE matviews.runs SET status = 'cancelled', finished_at = "
        "pg_catalog.clock_timestamp(), relid = NULL, error = pg_catalog.jsonb_build_object("
        "'message', 'the watch of the view changed', 'sqlstate', '57014', 'detail', NULL, "
        "'hint', 'The worker queues a run for the new watch when the view is stale.') "
        "WHERE definition_id OPERATOR(pg_catalog.=) $1 "
        "AND status OPERATOR(pg_catalog.=) 'queued' AND trigger OPERATOR(pg_catalog.=) 'watch'",
        {pg::Param::int8(id)});
    pg::wake_scheduler_at_commit(true);
}

int Store::drop_unused_watch_triggers() {
    // Our triggers on tables no watch or incremental view reads. Each table is locked by OID
    // only if it is free now, in a subtransaction of its own (a busy table is left for a later
    // round, and no writer ever queues behind this); then, under the lock and in a new snapshot,
    // the trigger is looked up again (a view that has just adopted it holds a lock this one
    // waited out) and dropped as the table's owner, in a security-restricted operation.
    constexpr const char* kUnused = R"SQL(
        SELECT t.tgrelid, pg_catalog.format('%I.%I', n.nspname, c.relname), c.relowner
        FROM pg_catalog.pg_trigger t
        JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        WHERE t.tgname OPERATOR(pg_catalog.=) $1 AND t.tgfoid OPERATOR(pg_catalog.=) {}
          AND c.relkind OPERATOR(pg_catalog.=) ANY ('{{r,p}}'::pg_catalog.char[])
          AND ($2::pg_catalog.oid IS NULL OR t.tgrelid OPERATOR(pg_catalog.=) $2)
          AND NOT EXISTS (SELECT 1 FROM matviews.definitions d WHERE {})
    )SQL";
    {
        // Log rows of tables no incremental view reads any more (its strategy changed, it was
        // deleted). A view that is becoming incremental needs none: its first refresh is full.
        AsExtensionOwner as;
        spi_.exec(R"SQL(
            DELETE FROM matviews.changes c
            WHERE NOT EXISTS (
                SELECT 1 FROM matviews.definitions d
                WHERE d.refresh_strategy OPERATOR(pg_catalog.=) 'incremental'
                  AND c.relid OPERATOR(pg_catalog.=) ANY (d.inc_relids))
        )SQL");
    }
    int left = 0;
    std::vector<const TriggerSpec*> specs;
    for (const auto& t : kWatchTriggers) specs.push_back(&t);
    for (const auto& t : kCaptureTriggers) specs.push_back(&t);
    for (const TriggerSpec* spec : specs) {
        const std::string unused = fmt::format(kUnused, spec->function, spec->used_by);
        std::vector<Oid> candidates;
        {
            AsExtensionOwner as;
            auto r = spi_.exec(unused, {pg::Param::text(spec->name), pg::Param::null(OIDOID)});
            for (const auto& row : r.rows) candidates.push_back(static_cast<Oid>(row[0].as_int()));
        }
        for (Oid relid : candidates) {
            auto failed = pg::in_subtransaction([&] {
                if (pg::lock_relation_for_ddl(relid, true, false) == pg::LockResult::busy) {
                    left++;
                    return;
                }
                std::optional<pg::Result> again;
                {
                    AsExtensionOwner as;
                    again = spi_.exec(unused, {pg::Param::text(spec->name), pg::Param::oid(relid)});
                }
                if (again->empty()) return;  // gone, or a view reads it again
                pg::RoleScope as_owner(static_cast<Oid>(again->first()[2].as_int()), true);
                spi_.exec(fmt::format("DROP TRIGGER {} ON {}", spec->name,
                                      again->first()[1].as_string()));
            });
            if (failed) {
                if (pg::is_cancel(*failed)) throw Error(*failed);
                left++;
            }
        }
    }
    return left;
}

std::vector<WatchMark> Store::apply_watch_marks(const std::vector<WatchMark>& marks,
                                                bool all_watched) {
    // One statement: marks by relation (every watch that reads it) and by definition, summed
    // per definition, applied to the rows that are not locked; the rest come back.
    AsExtensionOwner as;
    std::vector<int64_t> rel, rel_n, rel_at, def, def_n, def_at;
    for (const auto& m : marks) {
        if (m.definition_id != 0) {
            def.push_back(m.definition_id);
            def_n.push_back(m.count);
            def_at.push_back(m.first_at);
        } else {
            rel.push_back(m.relid);
            rel_n.push_back(m.count);
            rel_at.push_back(m.first_at);
        }
    }
    auto r = spi_.exec(R"SQL(
        WITH byrel AS (
            SELECT d.id, m.n, m.at
            FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.oid[]),
                            pg_catalog.unnest($2::pg_catalog.int8[]),
                            pg_catalog.unnest($3::pg_catalog.int8[])) AS m(relid, n, at)
            JOIN matviews.definitions d
              ON m.relid OPERATOR(pg_catalog.=) ANY (d.watch_relids::pg_catalog.oid[])
            WHERE d.watch_min_interval IS NOT NULL
        ), byid AS (
            SELECT k.id, k.n, k.at
            FROM ROWS FROM (pg_catalog.unnest($4::pg_catalog.int8[]),
                            pg_catalog.unnest($5::pg_catalog.int8[]),
                            pg_catalog.unnest($6::pg_catalog.int8[])) AS k(id, n, at)
        ), everything AS (
            SELECT d.id, 0::pg_catalog.int8 AS n,
                   ((EXTRACT(EPOCH FROM pg_catalog.now()) OPERATOR(pg_catalog.-) 946684800)
                    OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8 AS at
            FROM matviews.definitions d
            WHERE $7 AND d.watch_min_interval IS NOT NULL
        ), hit AS (
            SELECT x.id, pg_catalog.sum(x.n)::pg_catalog.int8 AS n, pg_catalog.min(x.at) AS at
            FROM (SELECT * FROM byrel UNION ALL SELECT * FROM byid
                  UNION ALL SELECT * FROM everything) x
            GROUP BY x.id
        ), locked AS (
            SELECT d.id FROM matviews.definitions d
            WHERE d.id OPERATOR(pg_catalog.=) ANY (SELECT hit.id FROM hit)
              AND d.watch_min_interval IS NOT NULL
            FOR UPDATE SKIP LOCKED
        ), applied AS (
            UPDATE matviews.definitions d
               SET stale = true,
                   stale_since = COALESCE(d.stale_since, pg_catalog.to_timestamp(
                       (hit.at::pg_catalog.float8 OPERATOR(pg_catalog./) 1000000)
                       OPERATOR(pg_catalog.+) 946684800)),
                   pending_changes = d.pending_changes OPERATOR(pg_catalog.+) hit.n,
                   change_seq = d.change_seq OPERATOR(pg_catalog.+) 1
              FROM hit
             WHERE d.id OPERATOR(pg_catalog.=) hit.id
               AND d.id OPERATOR(pg_catalog.=) ANY (SELECT locked.id FROM locked)
            RETURNING d.id
        )
        SELECT hit.id, hit.n, hit.at FROM hit
        WHERE hit.id OPERATOR(pg_catalog.<>) ALL (SELECT applied.id FROM applied)
          AND EXISTS (SELECT 1 FROM matviews.definitions d
                      WHERE d.id OPERATOR(pg_catalog.=) hit.id
                        AND d.watch_min_interval IS NOT NULL)
    )SQL",
                       {pg::Param::text(int_array(rel)), pg::Param::text(int_array(rel_n)),
                        pg::Param::text(int_array(rel_at)), pg::Param::text(int_array(def)),
                        pg::Param::text(int_array(def_n)), pg::Param::text(int_array(def_at)),
                        pg::Param::boolean(all_watched)});
    std::vector<WatchMark> left;
    for (const auto& row : r.rows) {
        WatchMark m;
        m.definition_id = row[0].as_int();
        m.count = row[1].as_int();
        m.first_at = row[2].as_int();
        left.push_back(m);
    }
    return left;
}

int64_t Store::enqueue_watch_runs() {
    // A run with trigger 'watch' and no strategy of its own (the definition's applies), owned
    // by the relation's owner, as a schedule tick's run is; a view whose refreshes fail waits
    // longer after each failure.
    AsExtensionOwner as;
    auto r = spi_.exec(R"SQL(
        INSERT INTO matviews.runs (view, relid, definition_id, operation, strategy, status,
                                   trigger, run_at, role, owner, meta)
        SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), d.relid, d.id, 'refresh', NULL,
               'queued', 'watch',
               pg_catalog.timestamptz_larger(pg_catalog.clock_timestamp(),
                   pg_catalog.timestamptz_larger(
                       COALESCE(last.started_at OPERATOR(pg_catalog.+) d.watch_min_interval,
                                '-infinity'::pg_catalog.timestamptz),
                       -- After failures, back off as a schedule's retries do: 2^n seconds from
                       -- the last failure, at most 5 minutes.
                       CASE WHEN d.consecutive_failures OPERATOR(pg_catalog.>) 0
                            THEN COALESCE(last.finished_at, last.started_at) OPERATOR(pg_catalog.+)
                                 pg_catalog.make_interval(secs => pg_catalog.float8smaller(
                                     pg_catalog.power(2::pg_catalog.float8,
                                                      d.consecutive_failures::pg_catalog.float8),
                                     300::pg_catalog.float8))
                            ELSE '-infinity'::pg_catalog.timestamptz END)),
               pg_catalog.pg_get_userbyid(c.relowner), pg_catalog.pg_get_userbyid(c.relowner),
               pg_catalog.jsonb_build_object('request', pg_catalog.jsonb_build_object(
                   'pending_changes', d.pending_changes, 'stale_since', d.stale_since))
        FROM matviews.definitions d
        JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.relid
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        LEFT JOIN LATERAL (
            SELECT r.started_at, r.finished_at FROM matviews.runs r
            WHERE r.definition_id OPERATOR(pg_catalog.=) d.id
              AND r.trigger OPERATOR(pg_catalog.=) 'watch' AND r.started_at IS NOT NULL
            ORDER BY r.id DESC LIMIT 1) last ON true
        WHERE d.stale AND d.enabled AND d.watch_min_interval IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM matviews.runs q
              WHERE q.definition_id OPERATOR(pg_catalog.=) d.id
                AND q.status OPERATOR(pg_catalog.=) 'queued'
                AND q.trigger OPERATOR(pg_catalog.=) 'watch')
        RETURNING id
    )SQL");
    return static_cast<int64_t>(r.processed);
}

void Store::follow_watched_ddl(const DdlCommands& commands) {
    // The relations this command created or altered, and their parents: when a watch reads any
    // of them (a new partition or child of a watched table, a replaced plain view), the
    // scheduler follows its sources again, as the view's owner (refollow_watch). Nothing is
    // done here under the authority of the DDL's role, nor in its transaction.
    const std::string& related = commands.related;
    if (related == "{}") return;
    AsExtensionOwner as;
    auto d = spi_.exec(
        "SELECT 1 FROM matviews.definitions WHERE watch_min_interval IS NOT NULL "
        "AND relid IS NOT NULL "
        "AND watch_relids::pg_catalog.oid[] OPERATOR(pg_catalog.&&) $1::pg_catalog.oid[] LIMIT 1",
        {pg::Param::text(related)});
    if (!d.empty()) pg::wake_scheduler_at_commit(true);
}

std::vector<int64_t> Store::watched_definitions() {
    AsExtensionOwner as;
    auto r = spi_.exec(
        "SELECT id FROM matviews.definitions WHERE watch_min_interval IS NOT NULL "
        "AND relid IS NOT NULL ORDER BY id");
    std::vector<int64_t> out;
    for (const auto& row : r.rows) out.push_back(row[0].as_int());
    return out;
}

bool Store::refollow_watch(int64_t id) {
    // The scheduler: recompute a watch's sources; when they changed, put the triggers on as the
    // view's owner (tables locked only if free now) and record the sources, marking the view
    // stale (the new ones may hold other rows), only while it is still watched and its row is
    // not locked (a watch or unwatch is committing); false: try again later. It takes no
    // per-view lock: a user's operation on the view must never be skipped because of this
    // bookkeeping.
    auto def = find_by_id(id);
    if (!def || !def->watch_min_interval || def->relid == InvalidOid) return true;
    auto rel = relation_by_oid(def->relid);
    if (!rel) return true;
    auto sources = watch_sources(rel->oid);
    std::vector<int64_t> ids;
    for (const auto& s : sources) ids.push_back(s.relid);
    // Only a change of the relations counts: a missing trigger on a relation the watch already
    // follows is not put back here, since a restore (pg_restore) creates the dumped triggers
    // only after the definitions' rows, and would then find this one in its way.
    bool same = false;
    {
        AsExtensionOwner as;
        auto r = spi_.exec(
            "SELECT COALESCE(d.watch_relids::pg_catalog.oid[] OPERATOR(pg_catalog.@>) "
            "$2::pg_catalog.oid[] AND d.watch_relids::pg_catalog.oid[] OPERATOR(pg_catalog.<@) "
            "$2::pg_catalog.oid[], false) "
            "FROM matviews.definitions d WHERE d.id OPERATOR(pg_catalog.=) $1",
            {pg::Param::int8(id), pg::Param::text(int_array(ids))});
        same = !r.empty() && r.first()[0].as_bool();
    }
    if (same) return true;
    install_watch_triggers(sources, rel->owner, rel->owner_name, false);
    AsExtensionOwner as;
    auto locked = spi_.exec(
        "SELECT watch_min_interval IS NOT NULL "
        "AND relid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass "
        "FROM matviews.definitions WHERE id OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED",
        {pg::Param::int8(id), pg::Param::oid(rel->oid)});
    if (locked.empty()) return false;
    if (!locked.first()[0].as_bool()) return true;  // unwatched, or bound elsewhere, meanwhile
    spi_.exec(
        "UPDATE matviews.definitions SET watch_relids = "
        "$2::pg_catalog.oid[]::pg_catalog.regclass[], stale = true, "
        "stale_since = COALESCE(stale_since, pg_catalog.now()), "
        "change_seq = change_seq OPERATOR(pg_catalog.+) 1 "
        "WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id), pg::Param::text(int_array(ids))});
    return true;
}

bool Store::any_watched() {
    AsExtensionOwner as;
    return !spi_.exec(
                    "SELECT 1 FROM matviews.definitions "
                    "WHERE watch_min_interval IS NOT NULL LIMIT 1")
                .empty();
}

}  // namespace mv::catalog
