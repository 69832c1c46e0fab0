// Relation lookups through the syscache and pg_catalog (see relation.hpp).
#include "catalog/relation.hpp"

#include "boundary/scopes.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "utils/syscache.h"
}

namespace mv::catalog {

namespace {

// The pg_class fields matviews reads, copied out of the syscache tuple.
struct ClassRow {
    bool found;
    char relkind;
    bool populated;
    Oid owner;
    Oid nsp;
    NameData relname;
};

ClassRow read_class(Oid relid) {
    // Reads relid's pg_class row from the syscache.
    ClassRow row{};
    pg::call([&] {
        HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
        if (!HeapTupleIsValid(tup)) return;
        Form_pg_class c = (Form_pg_class)GETSTRUCT(tup);
        row.found = true;
        row.relkind = c->relkind;
        row.populated = c->relispopulated;
        row.owner = c->relowner;
        row.nsp = c->relnamespace;
        row.relname = c->relname;
        ReleaseSysCache(tup);
    });
    return row;
}

std::string namespace_name(Oid nsp) {
    // get_namespace_name, "" when gone.
    const char* n = pg::call([&] { return get_namespace_name(nsp); });
    return n ? std::string(n) : std::string();
}

}  // namespace

std::string relkind_name(char relkind) {
    // Human names of relkinds.
    switch (relkind) {
        case 'r':
            return "table";
        case 'v':
            return "view";
        case 'm':
            return "materialized view";
        case 'i':
            return "index";
        case 'S':
            return "sequence";
        case 'f':
            return "foreign table";
        case 'p':
            return "partitioned table";
        case 'I':
            return "partitioned index";
        case 'c':
            return "composite type";
        default:
            return "relation";
    }
}

std::string relkind_with_article(char relkind) {
    // "an" before a vowel sound: index, ...
    std::string name = relkind_name(relkind);
    bool vowel = !name.empty() && std::string("aeiou").find(name[0]) != std::string::npos;
    return (vowel ? "an " : "a ") + name;
}

std::optional<RelationInfo> find_relation(const QualifiedName& q) {
    // RangeVarGetRelid with missing_ok, then the pg_class row.
    const char* schema = q.schema ? q.schema->c_str() : nullptr;
    const char* name = q.name.c_str();
    Oid relid = pg::call([&] {
        RangeVar* rv = makeRangeVar(schema ? pstrdup(schema) : NULL, pstrdup(name), -1);
        return RangeVarGetRelid(rv, NoLock, true);
    });
    if (!OidIsValid(relid)) return std::nullopt;
    return relation_by_oid(relid);
}

std::optional<RelationInfo> relation_by_oid(Oid relid) {
    // The pg_class row from the syscache, names and owner resolved.
    ClassRow row = read_class(relid);
    if (!row.found) return std::nullopt;
    RelationInfo info;
    info.oid = relid;
    info.schema = namespace_name(row.nsp);
    info.name = NameStr(row.relname);
    info.quoted = pg::quote_qualified(info.schema, info.name);
    info.relkind = row.relkind;
    info.populated = row.populated;
    info.owner = row.owner;
    info.owner_name = pg::role_name(row.owner);
    return info;
}

RelationInfo require_matview(const QualifiedName& q) {
    // find_relation, then the checks below.
    return require_matview(find_relation(q), q);
}

RelationInfo require_matview(const std::optional<RelationInfo>& rel, const QualifiedName& q) {
    // The errors PostgreSQL itself would give.
    std::string shown = q.schema ? pg::quote_qualified(*q.schema, q.name) : pg::quote_ident(q.name);
    if (!rel)
        throw Error(sqlstate::undefined_table,
                    fmt::format("materialized view {} does not exist", shown))
            .hint("Check the name and search_path, or create it with matviews.create().");
    if (rel->relkind != RELKIND_MATVIEW) throw_not_matview(*rel);
    return *rel;
}

void throw_not_matview(const RelationInfo& rel) {
    // 42809 with what the relation is instead.
    throw Error(sqlstate::wrong_object_type,
                fmt::format("{} is not a materialized view", rel.quoted))
        .detail(fmt::format("It is {}.", relkind_with_article(rel.relkind)));
}

std::string creation_schema(const QualifiedName& q) {
    // The explicit schema if it exists, else the first existing schema of search_path.
    if (q.schema) {
        const char* s = q.schema->c_str();
        Oid nsp = pg::call([&] { return get_namespace_oid(s, true); });
        if (!OidIsValid(nsp))
            throw Error(sqlstate::invalid_schema_name,
                        fmt::format("schema {} does not exist", pg::quote_ident(*q.schema)))
                .hint("Create the schema first, or use another one.");
        return *q.schema;
    }
    auto schemas = search_path_schemas();
    if (schemas.empty())
        throw Error(sqlstate::invalid_schema_name, "no schema has been selected to create in")
            .hint("Set search_path to an existing schema, or qualify the name: schema.view.");
    return schemas.front();
}

std::vector<std::string> search_path_schemas() {
    // fetch_search_path(false): existing schemas only, no implicit pg_catalog or pg_temp.
    List* path = pg::call([] { return fetch_search_path(false); });
    std::vector<std::string> out;
    int n = path ? list_length(path) : 0;
    for (int i = 0; i < n; i++) {
        Oid nsp = list_nth_oid(path, i);
        std::string name = namespace_name(nsp);
        if (!name.empty()) out.push_back(std::move(name));
    }
    return out;
}

void require_owner(const RelationInfo& rel) {
    // The check PostgreSQL applies before ALTER/REFRESH/DROP.
    if (!pg::has_privs_of(rel.owner))
        throw Error(sqlstate::insufficient_privilege,
                    fmt::format("must be owner of {} {}", relkind_name(rel.relkind), rel.quoted))
            .hint(fmt::format("Run this as {} or as a member of that role.",
                              pg::quote_ident(rel.owner_name)));
}

std::optional<int64_t> estimated_rows(Oid relid) {
    // reltuples from the syscache.
    float4 tuples = -1;
    pg::call([&] {
        HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
        if (!HeapTupleIsValid(tup)) return;
        tuples = ((Form_pg_class)GETSTRUCT(tup))->reltuples;
        ReleaseSysCache(tup);
    });
    if (tuples < 0) return std::nullopt;
    return static_cast<int64_t>(tuples);
}

bool has_concurrent_refresh_index(pg::Spi& spi, Oid relid) {
    // The conditions of is_usable_unique_index() in PostgreSQL's matview.c.
    auto v = spi.scalar(R"SQL(
        SELECT EXISTS (
            SELECT 1
            FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
            JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) ic.relam
            WHERE i.indrelid OPERATOR(pg_catalog.=) $1
              AND i.indisunique AND i.indisvalid AND i.indimmediate
              AND i.indpred IS NULL AND i.indexprs IS NULL
              AND am.amname OPERATOR(pg_catalog.=) 'btree'
              AND i.indnatts OPERATOR(pg_catalog.>) 0
              AND NOT (0::pg_catalog.int2 OPERATOR(pg_catalog.>=) ANY (i.indkey::pg_catalog.int2[])))
    )SQL",
                        {pg::Param::oid(relid)});
    return v.as_bool();
}

std::vector<Dependent> dependents(pg::Spi& spi, Oid relid) {
    // Walks pg_depend from each relation to the rewrite rules (views) that reference it. UNION
    // keeps one row per (relation, path length), so diamonds and the one pg_depend row per
    // referenced column do not multiply paths (enumerating paths is exponential in layered
    // graphs). A view's own rule is skipped; the depth cap stops a cycle of plain views (which
    // CREATE OR REPLACE VIEW can build) from recursing forever.
    auto r = spi.exec(R"SQL(
        WITH RECURSIVE deps(oid, depth) AS (
            SELECT $1::pg_catalog.oid, 0
          UNION
            SELECT rw.ev_class, deps.depth OPERATOR(pg_catalog.+) 1
            FROM deps
            JOIN pg_catalog.pg_depend d
              ON d.refobjid OPERATOR(pg_catalog.=) deps.oid
             AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
             AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
            JOIN pg_catalog.pg_rewrite rw ON rw.oid OPERATOR(pg_catalog.=) d.objid
            WHERE rw.ev_class OPERATOR(pg_catalog.<>) deps.oid
              AND deps.depth OPERATOR(pg_catalog.<) 1000
        )
        SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname) AS quoted,
               c.relkind::pg_catalog.text AS relkind, pg_catalog.max(deps.depth) AS depth
        FROM deps
        JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) deps.oid
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        WHERE deps.oid OPERATOR(pg_catalog.<>) $1
        GROUP BY c.oid, n.nspname, c.relname, c.relkind
        ORDER BY 4, 2
    )SQL",
                      {pg::Param::oid(relid)});
    std::vector<Dependent> out;
    for (const auto& row : r.rows) {
        Dependent d;
        d.oid = static_cast<Oid>(row[0].as_int());
        d.quoted = row[1].as_string();
        d.relkind = row[2].as_string().empty() ? '?' : row[2].as_string()[0];
        d.depth = static_cast<int>(row[3].as_int());
        out.push_back(std::move(d));
    }
    return out;
}

std::optional<int64_t> exact_rows(pg::Spi& spi, const RelationInfo& rel) {
    // count(*), null while unpopulated.
    ClassRow row = read_class(rel.oid);
    if (!row.found || !row.populated) return std::nullopt;
    return spi.scalar(fmt::format("SELECT pg_catalog.count(*) FROM {}", rel.quoted)).as_int();
}

std::optional<std::string> relation_comment(pg::Spi& spi, Oid relid) {
    return spi.scalar("SELECT pg_catalog.obj_description($1, 'pg_class')", {pg::Param::oid(relid)})
        .text();
}

IndexSlot index_slot(pg::Spi& spi, const RelationInfo& rel, const std::string& index,
                     const std::vector<std::string>& columns) {
    // Reads pg_class and pg_index for the name in the view's schema.
    auto r = spi.exec(R"SQL(
        SELECT COALESCE(i.indrelid OPERATOR(pg_catalog.=) $3, false) AS on_view,
               COALESCE(i.indrelid OPERATOR(pg_catalog.=) $3 AND i.indisunique
                        AND i.indpred IS NULL AND i.indexprs IS NULL
                        AND ARRAY(SELECT a.attname::pg_catalog.text
                                  FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[])
                                       WITH ORDINALITY AS k(attnum, ord)
                                  JOIN pg_catalog.pg_attribute a
                                    ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
                                   AND a.attnum OPERATOR(pg_catalog.=) k.attnum
                                  ORDER BY k.ord) OPERATOR(pg_catalog.=) $4::pg_catalog.text[],
                        false) AS same_index
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        LEFT JOIN pg_catalog.pg_index i ON i.indexrelid OPERATOR(pg_catalog.=) c.oid
        WHERE n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name
          AND c.relname OPERATOR(pg_catalog.=) $2::pg_catalog.name
    )SQL",
                      {pg::Param::text(rel.schema), pg::Param::text(index), pg::Param::oid(rel.oid),
                       pg::Param::text_array(columns)});
    IndexSlot slot;
    if (r.empty()) return slot;
    slot.taken = true;
    slot.on_view = !r.first()[0].is_null() && r.first()[0].as_bool();
    slot.same_index = !r.first()[1].is_null() && r.first()[1].as_bool();
    return slot;
}

std::string stored_query(pg::Spi& spi, Oid relid) {
    // pg_get_viewdef with an empty search_path qualifies every name it prints.
    pg::GucScope guc;
    guc.set("search_path", "");
    auto v = spi.scalar("SELECT pg_catalog.pg_get_viewdef($1, false)", {pg::Param::oid(relid)});
    std::string def = v.as_string();
    while (!def.empty() && (def.back() == ';' || def.back() == ' ' || def.back() == '\n'))
        def.pop_back();
    while (!def.empty() && (def.front() == ' ' || def.front() == '\n')) def.erase(def.begin());
    return def;
}

}  // namespace mv::catalog
