// The change log of incremental views (see store.hpp, "incremental refresh"): what the capture
// trigger appends, what a refresh reads and records, and the log rows it deletes. The log is
// matviews.changes; only the extension's owner reads or writes it.
#include "catalog/store.hpp"
#include "catalog/store_internal.hpp"

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
    pg::Param old_rows = pg::Param::null(JSONBOID), new_rows = pg::Param::null(JSONBOID);
    std::optional<pg::KeptRows> rows;
    if (kind != 't') {
        // As the writer, with the settings that make every value's text exact and readable
        // back whatever the reader's settings.
        pg::GucScope guc;
        guc.set("extra_float_digits", "1");
        guc.set("IntervalStyle", "postgres");
        guc.set("DateStyle", "ISO, YMD");
        guc.set("bytea_output", "hex");
        spi_.register_trigger_data(td);
        const char* agg_old = "(SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(o)) FROM mv_old o)";
        const char* agg_new = "(SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(n)) FROM mv_new n)";
        rows.emplace(spi_.exec_kept(fmt::format("SELECT {}, {}",
                                                kind == 'i' ? "NULL::pg_catalog.jsonb" : agg_old,
                                                kind == 'd' ? "NULL::pg_catalog.jsonb" : agg_new)));
        old_rows = rows->param(0, 0);
        new_rows = rows->param(0, 1);
        if (old_rows.is_null && new_rows.is_null) return;  // the statement changed no row
    }
    AsExtensionOwner as;
    spi_.exec(
        "INSERT INTO matviews.changes (relid, kind, old_rows, new_rows) "
        "VALUES ($1, $2::pg_catalog.\"char\", $3, $4)",
        {pg::Param::oid(relid), pg::Param::text(std::string(1, kind)), old_rows, new_rows});
}

std::vector<Oid> Store::tables_missing_capture(const std::vector<Oid>& tables) {
    AsExtensionOwner as;
    auto r = spi_.exec(R"SQL(
        SELECT t.relid FROM pg_catalog.unnest($1::pg_catalog.oid[]) t(relid)
        WHERE (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger g
               WHERE g.tgrelid OPERATOR(pg_catalog.=) t.relid
                 AND g.tgfoid OPERATOR(pg_catalog.=) 'matviews._capture()'::pg_catalog.regprocedure
                 AND g.tgname OPERATOR(pg_catalog.=) ANY ('{matviews_capture_ins,matviews_capture_upd,matviews_capture_del,matviews_capture_trunc}'::pg_catalog.name[])
                 AND g.tgenabled OPERATOR(pg_catalog.<>) 'D') OPERATOR(pg_catalog.<) 4
    )SQL",
                       {pg::Param::oid_array(tables)});
    std::vector<Oid> out;
    for (const auto& row : r.rows) out.push_back(static_cast<Oid>(row[0].as_int()));
    return out;
}

std::string Store::capture_shape(Oid view, const std::vector<Oid>& tables) {
    AsExtensionOwner as;
    return spi_
        .scalar(R"SQL(
        SELECT pg_catalog.jsonb_build_object(
            'system', (SELECT s.system_identifier::pg_catalog.text
                       FROM pg_catalog.pg_control_system() s),
            'database', (SELECT d.oid FROM pg_catalog.pg_database d
                         WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()),
            'view', $1,
            'tables', (SELECT pg_catalog.jsonb_object_agg(a.attrelid::pg_catalog.text, a.cols)
                       FROM (SELECT t.relid AS attrelid,
                                    (SELECT pg_catalog.string_agg(
                                         pg_catalog.concat_ws(':', a.attnum, a.attname,
                                                              a.atttypid, a.atttypmod),
                                         ',' ORDER BY a.attnum)
                                     FROM pg_catalog.pg_attribute a
                                     WHERE a.attrelid OPERATOR(pg_catalog.=) t.relid
                                       AND a.attnum OPERATOR(pg_catalog.>) 0
                                       AND NOT a.attisdropped) AS cols
                             FROM pg_catalog.unnest($2::pg_catalog.oid[]) t(relid)) a)
        )::pg_catalog.text
    )SQL",
                {pg::Param::oid(view), pg::Param::oid_array(tables)})
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
    // snapshot); a view whose first refresh is still to come needs none.
    spi_.exec(R"SQL(
        DELETE FROM matviews.changes c
        WHERE c.relid OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.oid[])
          AND pg_catalog.pg_visible_in_snapshot(c.xid, $3::pg_catalog.pg_snapshot)
          AND NOT EXISTS (
              SELECT 1 FROM matviews.definitions d
              WHERE d.id OPERATOR(pg_catalog.<>) $1
                AND d.refresh_strategy OPERATOR(pg_catalog.=) 'incremental'
                AND d.inc_snapshot IS NOT NULL
                AND c.relid OPERATOR(pg_catalog.=) ANY (d.inc_relids)
                AND NOT pg_catalog.pg_visible_in_snapshot(c.xid, d.inc_snapshot))
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
