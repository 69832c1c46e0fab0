// The change log of incremental views (see store.hpp, "incremental refresh"): what the capture
// trigger appends, what a refresh reads and records, and the log rows it deletes. The log is
// matviews.changes; only the extension's owner reads or writes it.
#include "catalog/store.hpp"
#include "catalog/store_internal.hpp"

#include "boundary/rowlog.hpp"

extern "C" {
#include "commands/trigger.h"
#include "utils/rel.h"
}

namespace mv::catalog {

void Store::capture_statement(void* trigger_data) {
    auto* td = static_cast<TriggerData*>(trigger_data);
    Oid relid = RelationGetRelid(td->tg_relation);
    TriggerEvent ev = td->tg_event;
    char kind = TRIGGER_FIRED_BY_TRUNCATE(ev) ? 't'
                : TRIGGER_FIRED_BY_INSERT(ev) ? 'i'
                : TRIGGER_FIRED_BY_UPDATE(ev) ? 'u'
                                              : 'd';
    // Only matviews' own triggers log: one of its names, with the transition tables its event
    // has (a trigger someone else defined cannot make it log rows of its choosing).
    static const char* const kNames[] = {"matviews_capture_ins", "matviews_capture_upd",
                                         "matviews_capture_del", "matviews_capture_trunc"};
    const char* expected = kNames[kind == 'i' ? 0 : kind == 'u' ? 1 : kind == 'd' ? 2 : 3];
    bool wants_old = kind == 'u' || kind == 'd', wants_new = kind == 'u' || kind == 'i';
    if (strcmp(td->tg_trigger->tgname, expected) != 0 ||
        (td->tg_oldtable != nullptr) != wants_old || (td->tg_newtable != nullptr) != wants_new)
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    fmt::format("trigger {} is not one of matviews' capture triggers",
                                pg::quote_ident(td->tg_trigger->tgname)))
            .hint(
                "Only the triggers an incremental view puts on its tables may call "
                "matviews._capture().");
    std::vector<pg::Param> olds, news;
    if (kind != 't') {
        // As the writer, with the settings that make every value's text exact and readable back
        // whatever the reader's settings.
        constexpr int kRowsPerLogRow = 10000;
        pg::GucScope guc;
        if (pg::output_depends_on_settings(td)) {
            guc.set("extra_float_digits", "1");
            guc.set("IntervalStyle", "postgres");
            guc.set("DateStyle", "ISO, YMD");
            guc.set("bytea_output", "hex");
            guc.set("lc_monetary", "C");
            guc.set("search_path", pg::kPinnedSearchPath);  // regclass and friends qualified
        }
        olds = pg::transition_rows(td, true, kRowsPerLogRow);
        news = pg::transition_rows(td, false, kRowsPerLogRow);
        if (olds.empty() && news.empty()) return;  // the statement changed no row
    }
    AsExtensionOwner as;
    size_t n = std::max<size_t>(1, std::max(olds.size(), news.size()));
    for (size_t i = 0; i < n; i++)
        spi_.exec(
            "INSERT INTO matviews.changes (relid, kind, old_rows, new_rows) "
            "VALUES ($1, $2::pg_catalog.\"char\", $3, $4)",
            {pg::Param::oid(relid), pg::Param::text(std::string(1, kind)),
             i < olds.size() ? olds[i] : pg::Param::null(JSONBOID),
             i < news.size() ? news[i] : pg::Param::null(JSONBOID)});
}

void Store::require_trigger_privilege(const std::vector<Oid>& tables, Oid owner,
                                      const std::string& owner_name) {
    AsExtensionOwner as;
    auto r = spi_.exec(R"SQL(
        SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
        FROM pg_catalog.unnest($1::pg_catalog.oid[]) t(relid)
        JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        WHERE NOT pg_catalog.has_table_privilege($2, t.relid, 'TRIGGER')
        ORDER BY 1 LIMIT 1
    )SQL",
                       {pg::Param::oid_array(tables), pg::Param::oid(owner)});
    if (r.empty()) return;
    std::string table = r.first()[0].as_string();
    throw Error(sqlstate::insufficient_privilege,
                fmt::format("permission denied to capture changes of table {}", table))
        .detail(fmt::format("matviews puts statement triggers on every table the view reads, as "
                            "the view's owner, role \"{}\".",
                            owner_name))
        .hint(fmt::format("GRANT TRIGGER ON {} TO {}; (by the table's owner)", table,
                          pg::quote_ident(owner_name)));
}

std::vector<Oid> Store::tables_missing_capture(const std::vector<Oid>& tables, Oid owner) {
    // Each table's four triggers must be exactly matviews' own: AFTER ... FOR EACH STATEMENT of
    // one event, with its transition tables, no WHEN condition or column list, enabled (always;
    // or origin on a table the view's owner does not own, which it may not change). A missing
    // one is put back, and one of the owner's tables left at origin is made always (and the
    // refresh is a full one); one of that name that is not like this would silently capture
    // nothing, so it is an error.
    AsExtensionOwner as;
    auto r = spi_.exec(R"SQL(
        WITH want(name, type, oldt, newt) AS (VALUES
            ('matviews_capture_ins'::pg_catalog.name, 4, NULL::pg_catalog.name, 'mv_new'::pg_catalog.name),
            ('matviews_capture_upd', 16, 'mv_old', 'mv_new'),
            ('matviews_capture_del', 8, 'mv_old', NULL),
            ('matviews_capture_trunc', 32, NULL, NULL))
        SELECT t.relid, g.oid IS NULL
                        OR (g.tgenabled OPERATOR(pg_catalog.=) 'O'
                            AND c.relowner OPERATOR(pg_catalog.=) $2),
               w.name::pg_catalog.text,
               pg_catalog.format('%I.%I', n.nspname, c.relname), g.tgenabled::pg_catalog.text
        FROM pg_catalog.unnest($1::pg_catalog.oid[]) t(relid)
        JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        CROSS JOIN want w
        LEFT JOIN pg_catalog.pg_trigger g
               ON g.tgrelid OPERATOR(pg_catalog.=) t.relid AND g.tgname OPERATOR(pg_catalog.=) w.name
        WHERE g.oid IS NULL
           OR (g.tgenabled OPERATOR(pg_catalog.=) 'O' AND c.relowner OPERATOR(pg_catalog.=) $2)
           OR g.tgfoid OPERATOR(pg_catalog.<>) 'matviews._capture()'::pg_catalog.regprocedure
           OR g.tgtype OPERATOR(pg_catalog.<>) w.type OR g.tgqual IS NOT NULL
           OR g.tgenabled OPERATOR(pg_catalog.<>) ALL ('{O,A}'::pg_catalog."char"[])
           OR g.tgoldtable IS DISTINCT FROM w.oldt OR g.tgnewtable IS DISTINCT FROM w.newt
           OR COALESCE(pg_catalog.array_length(g.tgattr::pg_catalog.int2[], 1), 0) OPERATOR(pg_catalog.>) 0
        ORDER BY 1, 3
    )SQL",
                       {pg::Param::oid_array(tables), pg::Param::oid(owner)});
    std::vector<Oid> out;
    for (const auto& row : r.rows) {
        if (!row[1].as_bool()) {
            bool disabled = row[4].as_string() == "D" || row[4].as_string() == "R";
            throw Error(sqlstate::object_not_in_prerequisite_state,
                        fmt::format("the trigger {} on {} does not capture changes for matviews",
                                    row[2].as_string(), row[3].as_string()))
                .detail(disabled ? "It is disabled (or fires only as a replica), so changes to "
                                   "the table would be missed."
                                 : "It is not the AFTER ... FOR EACH STATEMENT trigger with "
                                   "transition tables matviews creates under that name.")
                .hint(disabled ? fmt::format("ALTER TABLE {} ENABLE ALWAYS TRIGGER {};",
                                             row[3].as_string(), row[2].as_string())
                               : fmt::format("DROP TRIGGER {} ON {}; matviews then creates its "
                                             "own at the next refresh.",
                                             row[2].as_string(), row[3].as_string()));
        }
        Oid relid = static_cast<Oid>(row[0].as_int());
        if (std::find(out.begin(), out.end(), relid) == out.end()) out.push_back(relid);
    }
    return out;
}

std::string Store::capture_shape(Oid view, const std::vector<Oid>& tables, uint64_t query,
                                 const std::vector<Oid>& functions) {
    // Every column's number, name, type and catalog row version (xmin: any ALTER of it, even
    // undone, makes a new one) and every capture trigger's OID and row version (dropped and
    // re-created, disabled and enabled again), with the view, the rewritten query, and the
    // catalog row version of every function it calls (CREATE OR REPLACE keeps the OID).
    AsExtensionOwner as;
    return spi_
        .scalar(R"SQL(
        SELECT pg_catalog.jsonb_build_object(
            'system', (SELECT s.system_identifier::pg_catalog.text
                       FROM pg_catalog.pg_control_system() s),
            'database', (SELECT d.oid FROM pg_catalog.pg_database d
                         WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()),
            'view', $1,
            'query', $3,
            'functions', (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(':', p.oid, p.xmin), ','
                                                       ORDER BY p.oid)
                          FROM pg_catalog.pg_proc p
                          WHERE p.oid OPERATOR(pg_catalog.=) ANY ($4::pg_catalog.oid[])),
            'tables', (SELECT pg_catalog.jsonb_object_agg(a.attrelid::pg_catalog.text, a.cols)
                       FROM (SELECT t.relid AS attrelid,
                                    (SELECT pg_catalog.string_agg(
                                         pg_catalog.concat_ws(':', a.attnum, a.attname,
                                                              a.atttypid, a.atttypmod, a.xmin),
                                         ',' ORDER BY a.attnum)
                                     FROM pg_catalog.pg_attribute a
                                     WHERE a.attrelid OPERATOR(pg_catalog.=) t.relid
                                       AND a.attnum OPERATOR(pg_catalog.>) 0
                                       AND NOT a.attisdropped)
                                    OPERATOR(pg_catalog.||) ';' OPERATOR(pg_catalog.||)
                                    COALESCE((SELECT pg_catalog.string_agg(
                                         pg_catalog.concat_ws(':', g.oid, g.xmin), ','
                                         ORDER BY g.tgname)
                                     FROM pg_catalog.pg_trigger g
                                     WHERE g.tgrelid OPERATOR(pg_catalog.=) t.relid
                                       AND g.tgfoid OPERATOR(pg_catalog.=)
                                           'matviews._capture()'::pg_catalog.regprocedure), '')
                                    AS cols
                             FROM pg_catalog.unnest($2::pg_catalog.oid[]) t(relid)) a)
        )::pg_catalog.text
    )SQL",
                {pg::Param::oid(view), pg::Param::oid_array(tables),
                 pg::Param::text(std::to_string(query)), pg::Param::oid_array(functions)})
        .as_string();
}

std::pair<std::optional<std::string>, std::optional<std::string>> Store::incremental_state(
    int64_t id) {
    AsExtensionOwner as;
    auto r = spi_.exec(
        "SELECT inc_snapshot::pg_catalog.text, inc_state::pg_catalog.text "
        "FROM matviews.definitions WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id)});
    if (r.empty()) return {};
    return {r.first()[0].text(), r.first()[1].text()};
}

pg::KeptRows Store::read_changes(const std::vector<Oid>& tables,
                                 const std::vector<int32_t>& source_of,
                                 const std::optional<std::string>& since) {
    AsExtensionOwner as;
    return spi_.exec_kept(R"SQL(
        SELECT m.src,
               pg_catalog.jsonb_agg(e.r) FILTER (WHERE e.r IS NOT NULL),
               pg_catalog.jsonb_agg(e.r) FILTER (WHERE e.r IS NOT NULL AND e.old),
               pg_catalog.bool_or(c.kind OPERATOR(pg_catalog.=) 't'),
               pg_catalog.count(e.r)
        FROM matviews.changes c
        JOIN ROWS FROM (pg_catalog.unnest($1::pg_catalog.oid[]),
                        pg_catalog.unnest($2::pg_catalog.int4[])) AS m(relid, src)
          ON c.relid OPERATOR(pg_catalog.=) m.relid
        LEFT JOIN LATERAL (
            SELECT x.value, true FROM pg_catalog.jsonb_array_elements(c.old_rows) x
            UNION ALL
            SELECT y.value, false FROM pg_catalog.jsonb_array_elements(c.new_rows) y
        ) AS e(r, old) ON true
        WHERE $3::pg_catalog.pg_snapshot IS NULL
           OR NOT pg_catalog.pg_visible_in_snapshot(c.xid, $3::pg_catalog.pg_snapshot)
        GROUP BY m.src
        ORDER BY m.src
    )SQL",
                          {pg::Param::oid_array(tables), pg::Param::int4_array(source_of),
                           pg::Param::opt_text(since)});
}

int64_t Store::pending_change_bytes(const std::vector<Oid>& tables,
                                    const std::optional<std::string>& since) {
    AsExtensionOwner as;
    return spi_
        .scalar(R"SQL(
        SELECT COALESCE(pg_catalog.sum(COALESCE(pg_catalog.pg_column_size(c.old_rows), 0)
                                       OPERATOR(pg_catalog.+)
                                       COALESCE(pg_catalog.pg_column_size(c.new_rows), 0)), 0)::pg_catalog.int8
        FROM matviews.changes c
        WHERE c.relid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])
          AND ($2::pg_catalog.pg_snapshot IS NULL
               OR NOT pg_catalog.pg_visible_in_snapshot(c.xid, $2::pg_catalog.pg_snapshot))
    )SQL",
                {pg::Param::oid_array(tables), pg::Param::opt_text(since)})
        .as_int();
}

std::string Store::current_snapshot() {
    // This transaction's own changes count as not yet taken in: it may write more before it
    // commits, and those log rows carry the same xid.
    return spi_
        .scalar(R"SQL(
        SELECT CASE WHEN me IS NULL OR NOT pg_catalog.pg_visible_in_snapshot(me, s)
                    THEN s::pg_catalog.text
                    ELSE pg_catalog.concat(
                        LEAST(pg_catalog.pg_snapshot_xmin(s), me), ':',
                        pg_catalog.pg_snapshot_xmax(s), ':',
                        (SELECT pg_catalog.string_agg(x::pg_catalog.text, ',' ORDER BY x)
                         FROM (SELECT pg_catalog.pg_snapshot_xip(s) UNION SELECT me) AS u(x)))
               END
        FROM (SELECT pg_catalog.pg_current_snapshot(), pg_catalog.pg_current_xact_id_if_assigned())
             AS c(s, me)
    )SQL")
        .as_string();
}

void Store::save_incremental_state(int64_t id, const std::string& snapshot,
                                   const std::string& shape, const std::vector<Oid>& tables) {
    AsExtensionOwner as;
    spi_.exec(
        "UPDATE matviews.definitions SET inc_snapshot = $2::pg_catalog.pg_snapshot, "
        "inc_state = $3::pg_catalog.jsonb, inc_relids = $4 "
        "WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id), pg::Param::text(snapshot), pg::Param::text(shape),
         pg::Param::oid_array(tables)});
    // Log rows every incremental view reading their table has taken in (committed before its
    // snapshot). A view whose first refresh has no snapshot yet keeps them all: that refresh may
    // be running, and will record a snapshot older than this one.
    spi_.exec(R"SQL(
        DELETE FROM matviews.changes c
        WHERE c.relid OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.oid[])
          AND pg_catalog.pg_visible_in_snapshot(c.xid, $3::pg_catalog.pg_snapshot)
          AND NOT EXISTS (
              SELECT 1 FROM matviews.definitions d
              WHERE d.id OPERATOR(pg_catalog.<>) $1
                AND d.refresh_strategy OPERATOR(pg_catalog.=) 'incremental'
                AND c.relid OPERATOR(pg_catalog.=) ANY (d.inc_relids)
                AND (d.inc_snapshot IS NULL
                     OR NOT pg_catalog.pg_visible_in_snapshot(c.xid, d.inc_snapshot)))
    )SQL",
              {pg::Param::int8(id), pg::Param::oid_array(tables), pg::Param::text(snapshot)});
}

void Store::reset_incremental_state(int64_t id, const std::vector<Oid>& tables) {
    AsExtensionOwner as;
    spi_.exec(
        "UPDATE matviews.definitions SET inc_snapshot = NULL, inc_state = NULL, "
        "inc_relids = CASE WHEN pg_catalog.cardinality($2) OPERATOR(pg_catalog.>) 0 "
        "THEN $2 END WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(id), pg::Param::oid_array(tables)});
}

pg::KeptRows Store::owner_rows(const std::string& sql, const std::vector<pg::Param>& params,
                               Oid owner) {
    pg::RoleScope as_owner(owner, true);
    return spi_.exec_kept(sql, params);
}

}  // namespace mv::catalog
