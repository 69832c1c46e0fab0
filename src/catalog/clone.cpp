// Reading what a swap carries over, and the statements that re-create it (see clone.hpp).
// Every capture runs with an empty search_path, so deparsed names come out schema-qualified.
#include "catalog/clone.hpp"

#include "boundary/scopes.hpp"

extern "C" {
#include "access/relation.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/prs2lock.h"
#include "utils/rel.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"
}

namespace mv::catalog {

namespace {

using RelationMap = std::vector<std::pair<Oid, Oid>>;

struct Remap {
    const RelationMap* map;
    const std::vector<Oid>* rowtypes;  // the row types of the replaced relations
    bool named_elsewhere;              // a replaced relation is named outside a range table
};

bool replaced_rowtype(const Remap* r, Oid type) {
    return std::find(r->rowtypes->begin(), r->rowtypes->end(), type) != r->rowtypes->end();
}

// Replaces, in every range table of a query tree (subqueries, CTEs and sublinks included), each
// relation of the map by its replacement, and notes whether a replaced relation is named
// anywhere else (a regclass constant, its row type in a whole-row reference or cast), which a
// replacement by OID would not follow. Called by PostgreSQL's walkers: it must not throw.
extern "C" bool remap_walker(Node* node, void* context) {
    if (node == nullptr) return false;
    auto* r = static_cast<Remap*>(context);
    if (IsA(node, RangeTblEntry)) {
        auto* rte = reinterpret_cast<RangeTblEntry*>(node);
        if (rte->rtekind == RTE_RELATION)
            for (const auto& [from, to] : *r->map)
                if (rte->relid == from) {
                    rte->relid = to;
                    break;
                }
        return false;
    }
    if (IsA(node, Query))
        return query_tree_walker(reinterpret_cast<Query*>(node), pg::as_walker(remap_walker),
                                 context, QTW_EXAMINE_RTES_BEFORE);
    if (IsA(node, Const)) {
        auto* c = reinterpret_cast<Const*>(node);
        if (!c->constisnull && (c->consttype == REGCLASSOID || c->consttype == OIDOID))
            for (const auto& entry : *r->map)
                if (DatumGetObjectId(c->constvalue) == entry.first) r->named_elsewhere = true;
        if (!c->constisnull && c->consttype == REGTYPEOID &&
            replaced_rowtype(r, DatumGetObjectId(c->constvalue)))
            r->named_elsewhere = true;
        if (replaced_rowtype(r, c->consttype)) r->named_elsewhere = true;
    } else if (IsA(node, Var)) {
        if (replaced_rowtype(r, reinterpret_cast<Var*>(node)->vartype)) r->named_elsewhere = true;
    } else if (IsA(node, RowExpr)) {
        if (replaced_rowtype(r, reinterpret_cast<RowExpr*>(node)->row_typeid))
            r->named_elsewhere = true;
    } else if (IsA(node, ConvertRowtypeExpr)) {
        if (replaced_rowtype(r, reinterpret_cast<ConvertRowtypeExpr*>(node)->resulttype))
            r->named_elsewhere = true;
    } else if (IsA(node, CoerceViaIO)) {
        if (replaced_rowtype(r, reinterpret_cast<CoerceViaIO*>(node)->resulttype))
            r->named_elsewhere = true;
    } else if (IsA(node, RelabelType)) {
        if (replaced_rowtype(r, reinterpret_cast<RelabelType*>(node)->resulttype))
            r->named_elsewhere = true;
    } else if (IsA(node, FuncExpr)) {
        if (replaced_rowtype(r, reinterpret_cast<FuncExpr*>(node)->funcresulttype))
            r->named_elsewhere = true;
    }
    return expression_tree_walker(node, pg::as_walker(remap_walker), context);
}

std::optional<std::string> opt(const pg::Value& v) {
    return v.text();
}

std::string key_value(const std::string& option) {
    // "fillfactor=70" -> "fillfactor = '70'".
    size_t eq = option.find('=');
    if (eq == std::string::npos) return option;
    return option.substr(0, eq) + " = " + pg::quote_literal(option.substr(eq + 1));
}

}  // namespace

std::string with_clause(const std::vector<std::string>& reloptions) {
    // WITH (k = 'v', ...) from pg_class.reloptions entries.
    if (reloptions.empty()) return "";
    std::string out = " WITH (";
    for (size_t i = 0; i < reloptions.size(); i++) {
        if (i) out += ", ";
        out += key_value(reloptions[i]);
    }
    return out + ")";
}

std::string index_statement(const IndexSpec& spec, const std::string& index_name,
                            const std::string& table) {
    // CREATE [UNIQUE] INDEX name ON table USING am (keys) [INCLUDE] [NULLS NOT DISTINCT]
    // [WITH] [TABLESPACE] [WHERE], each part from the catalog.
    std::string keys, include;
    for (const auto& c : spec.columns) {
        if (c.included) {
            include += (include.empty() ? "" : ", ") + c.key;
            continue;
        }
        std::string k = c.key;
        if (!c.collation.empty()) k += " COLLATE " + c.collation;
        if (!c.opclass.empty()) k += " " + c.opclass;
        if (spec.ordered)
            k += std::string(c.desc ? " DESC" : " ASC") +
                 (c.nulls_first ? " NULLS FIRST" : " NULLS LAST");
        keys += (keys.empty() ? "" : ", ") + k;
    }
    std::string sql =
        fmt::format("CREATE {}INDEX {} ON {} USING {} ({})", spec.unique ? "UNIQUE " : "",
                    pg::quote_ident(index_name), table, pg::quote_ident(spec.method), keys);
    if (!include.empty()) sql += " INCLUDE (" + include + ")";
    if (spec.nulls_not_distinct) sql += " NULLS NOT DISTINCT";
    sql += with_clause(spec.reloptions);
    if (!spec.tablespace.empty()) sql += " TABLESPACE " + pg::quote_ident(spec.tablespace);
    if (!spec.predicate.empty()) sql += " WHERE " + spec.predicate;
    return sql;
}

std::vector<IndexSpec> index_specs(pg::Spi& spi, Oid relid) {
    // One row per index, then one row per index column.
    pg::GucScope guc;
    guc.set("search_path", "");
    auto idx = spi.exec(R"SQL(
        SELECT i.indexrelid, ic.relname::pg_catalog.text, i.indisunique, i.indnullsnotdistinct,
               am.amname::pg_catalog.text, pg_catalog.pg_indexam_has_property(am.oid, 'can_order'),
               COALESCE(ic.reloptions, '{}'), COALESCE(ts.spcname::pg_catalog.text, ''),
               COALESCE(pg_catalog.pg_get_expr(i.indpred, i.indrelid), ''),
               pg_catalog.obj_description(i.indexrelid, 'pg_class'), i.indisclustered
        FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
        JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) ic.relam
        LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid OPERATOR(pg_catalog.=) ic.reltablespace
        WHERE i.indrelid OPERATOR(pg_catalog.=) $1
        ORDER BY ic.relname
    )SQL",
                        {pg::Param::oid(relid)});
    std::vector<IndexSpec> out;
    for (const auto& row : idx.rows) {
        IndexSpec s;
        Oid index_oid = static_cast<Oid>(row[0].as_int());
        s.oid = index_oid;
        s.name = row[1].as_string();
        s.unique = row[2].as_bool();
        s.nulls_not_distinct = row[3].as_bool();
        s.method = row[4].as_string();
        s.ordered = row[5].as_bool();
        s.reloptions = row[6].as_text_array();
        s.tablespace = row[7].as_string();
        s.predicate = row[8].as_string();
        s.comment = opt(row[9]);
        s.clustered = row[10].as_bool();
        auto cols = spi.exec(R"SQL(
            SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k.n, false),
                   k.n OPERATOR(pg_catalog.>) i.indnkeyatts AS included,
                   CASE WHEN opc.oid IS NOT NULL
                        THEN pg_catalog.format('%I.%I', opcn.nspname, opc.opcname) ELSE '' END,
                   CASE WHEN coll.oid IS NOT NULL
                        THEN pg_catalog.format('%I.%I', colln.nspname, coll.collname) ELSE '' END,
                   COALESCE((i.indoption[k.n OPERATOR(pg_catalog.-) 1] OPERATOR(pg_catalog.&) 1)
                            OPERATOR(pg_catalog.<>) 0, false),
                   COALESCE((i.indoption[k.n OPERATOR(pg_catalog.-) 1] OPERATOR(pg_catalog.&) 2)
                            OPERATOR(pg_catalog.<>) 0, false)
            FROM pg_catalog.pg_index i
            CROSS JOIN LATERAL pg_catalog.generate_series(1, i.indnatts::pg_catalog.int4) AS k(n)
            LEFT JOIN pg_catalog.pg_opclass opc
                   ON k.n OPERATOR(pg_catalog.<=) i.indnkeyatts
                  AND opc.oid OPERATOR(pg_catalog.=) i.indclass[k.n OPERATOR(pg_catalog.-) 1]
            LEFT JOIN pg_catalog.pg_namespace opcn ON opcn.oid OPERATOR(pg_catalog.=) opc.opcnamespace
            LEFT JOIN pg_catalog.pg_collation coll
                   ON k.n OPERATOR(pg_catalog.<=) i.indnkeyatts
                  AND coll.oid OPERATOR(pg_catalog.=) i.indcollation[k.n OPERATOR(pg_catalog.-) 1]
            LEFT JOIN pg_catalog.pg_namespace colln ON colln.oid OPERATOR(pg_catalog.=) coll.collnamespace
            WHERE i.indexrelid OPERATOR(pg_catalog.=) $1
            ORDER BY k.n
        )SQL",
                             {pg::Param::oid(index_oid)});
        for (const auto& c : cols.rows) {
            IndexColumn col;
            col.key = c[0].as_string();
            col.included = c[1].as_bool();
            col.opclass = c[2].as_string();
            col.collation = c[3].as_string();
            col.desc = c[4].as_bool();
            col.nulls_first = c[5].as_bool();
            s.columns.push_back(std::move(col));
        }
        out.push_back(std::move(s));
    }
    return out;
}

RelationSpec relation_spec(pg::Spi& spi, Oid relid) {
    // Owner, ACLs, comments, reloptions, tablespace, access method.
    pg::GucScope guc;
    guc.set("search_path", "");
    RelationSpec s;
    auto r = spi.exec(R"SQL(
        SELECT pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text, c.relacl IS NOT NULL,
               pg_catalog.obj_description(c.oid, 'pg_class'), COALESCE(c.reloptions, '{}'),
               COALESCE(ts.spcname::pg_catalog.text, ''),
               CASE WHEN am.amname IS NULL OR am.amname OPERATOR(pg_catalog.=) 'heap' THEN ''
                    ELSE am.amname::pg_catalog.text END
        FROM pg_catalog.pg_class c
        LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid OPERATOR(pg_catalog.=) c.reltablespace
        LEFT JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) c.relam
        WHERE c.oid OPERATOR(pg_catalog.=) $1
    )SQL",
                      {pg::Param::oid(relid)});
    const auto& row = r.first();
    s.owner = row[0].as_string();
    s.has_acl = row[1].as_bool();
    s.comment = opt(row[2]);
    s.reloptions = row[3].as_text_array();
    s.tablespace = row[4].as_string();
    s.access_method = row[5].as_string();

    // In relacl order, which lists a grant option before the grants made with it (PostgreSQL
    // appends new entries).
    auto g = spi.exec(R"SQL(
        SELECT a.privilege_type::pg_catalog.text,
               CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                    ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
               a.is_grantable, ''::pg_catalog.text, a.grantor,
               pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantor)),
               a.grantor OPERATOR(pg_catalog.=) c.relowner
        FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
        WHERE c.oid OPERATOR(pg_catalog.=) $1
        UNION ALL
        SELECT a.privilege_type::pg_catalog.text,
               CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                    ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
               a.is_grantable, att.attname::pg_catalog.text, a.grantor,
               pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantor)),
               a.grantor OPERATOR(pg_catalog.=) c.relowner
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_attribute att ON att.attrelid OPERATOR(pg_catalog.=) c.oid
        CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) a
        WHERE c.oid OPERATOR(pg_catalog.=) $1 AND att.attnum OPERATOR(pg_catalog.>) 0
          AND NOT att.attisdropped
    )SQL",
                      {pg::Param::oid(relid)});
    for (const auto& row2 : g.rows)
        s.grants.push_back(Grant{row2[0].as_string(), row2[1].as_string(), row2[2].as_bool(),
                                 row2[3].as_string(), static_cast<Oid>(row2[4].as_int()),
                                 row2[5].as_string(), row2[6].as_bool()});

    auto cc = spi.exec(R"SQL(
        SELECT att.attname::pg_catalog.text, pg_catalog.col_description(att.attrelid, att.attnum)
        FROM pg_catalog.pg_attribute att
        WHERE att.attrelid OPERATOR(pg_catalog.=) $1 AND att.attnum OPERATOR(pg_catalog.>) 0
          AND NOT att.attisdropped
          AND pg_catalog.col_description(att.attrelid, att.attnum) IS NOT NULL
        ORDER BY att.attnum
    )SQL",
                       {pg::Param::oid(relid)});
    for (const auto& row3 : cc.rows)
        s.column_comments.emplace_back(row3[0].as_string(), row3[1].as_string());

    // Only the attribute options ALTER COLUMN SET accepts are carried.
    auto cs = spi.exec(R"SQL(
        SELECT att.attname::pg_catalog.text,
               NULLIF(att.attstattarget, -1)::pg_catalog.int4,
               ARRAY(SELECT o FROM pg_catalog.unnest(att.attoptions) o
                     WHERE pg_catalog.split_part(o, '=', 1) OPERATOR(pg_catalog.=)
                           ANY ('{n_distinct,n_distinct_inherited}'::pg_catalog.text[])),
               CASE WHEN att.attstorage OPERATOR(pg_catalog.<>) t.typstorage
                    THEN CASE att.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                                             WHEN 'x' THEN 'EXTENDED' WHEN 'm' THEN 'MAIN' END END,
               CASE att.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END
        FROM pg_catalog.pg_attribute att
        JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) att.atttypid
        WHERE att.attrelid OPERATOR(pg_catalog.=) $1 AND att.attnum OPERATOR(pg_catalog.>) 0
          AND NOT att.attisdropped
        ORDER BY att.attnum
    )SQL",
                       {pg::Param::oid(relid)});
    for (const auto& row4 : cs.rows) {
        ColumnSettings c;
        c.column = row4[0].as_string();
        if (!row4[1].is_null()) c.statistics = static_cast<int>(row4[1].as_int());
        c.options = row4[2].as_text_array();
        c.storage = opt(row4[3]);
        c.compression = opt(row4[4]);
        if (c.statistics || !c.options.empty() || c.storage || c.compression)
            s.column_settings.push_back(std::move(c));
    }
    return s;
}

std::vector<Statement> ownership_and_grants(const RelationSpec& spec, const std::string& kind,
                                            const std::string& target,
                                            const std::set<std::string>& target_columns) {
    // ALTER ... OWNER, then (when the old relation had explicit privileges) the same ACL: the
    // owner's grants first, then those made by other grantors, each as its grantor.
    std::vector<Statement> out;
    out.push_back(
        {fmt::format("ALTER {} {} OWNER TO {}", kind, target, pg::quote_ident(spec.owner))});
    if (!spec.has_acl && std::none_of(spec.grants.begin(), spec.grants.end(),
                                      [](const Grant& g) { return !g.column.empty(); }))
        return out;
    if (spec.has_acl)
        out.push_back(
            {fmt::format("REVOKE ALL ON TABLE {} FROM {}", target, pg::quote_ident(spec.owner))});
    // One GRANT per grantor, grantee, column and grant option, listing its privileges. A grant
    // made by another grantor runs as that role and says so (GRANTED BY must be the current user).
    struct Group {
        const Grant* first;
        std::string privileges;
    };
    std::vector<Group> grouped;
    for (const auto& g : spec.grants) {
        if (!g.column.empty() && !target_columns.count(g.column)) continue;
        std::string priv =
            g.privilege + (g.column.empty() ? "" : " (" + pg::quote_ident(g.column) + ")");
        auto it = std::find_if(grouped.begin(), grouped.end(), [&](const Group& e) {
            const Grant& f = *e.first;
            return f.by_owner == g.by_owner && (g.by_owner || f.grantor == g.grantor) &&
                   f.grantee == g.grantee && f.column == g.column && f.grantable == g.grantable;
        });
        if (it == grouped.end())
            grouped.push_back({&g, priv});
        else
            it->privileges += ", " + priv;
    }
    std::stable_partition(grouped.begin(), grouped.end(),
                          [](const Group& e) { return e.first->by_owner; });
    for (const auto& e : grouped) {
        const Grant& g = *e.first;
        out.push_back({fmt::format("GRANT {} ON TABLE {} TO {}{}{}", e.privileges, target,
                                   g.grantee, g.grantable ? " WITH GRANT OPTION" : "",
                                   g.by_owner ? "" : " GRANTED BY " + g.grantor_name),
                       g.by_owner ? InvalidOid : g.grantor});
    }
    return out;
}

auto grant_key(const Grant& g) {
    return std::make_tuple(g.privilege, g.grantee, g.grantable, g.column, g.grantor, g.by_owner);
}

bool same_privileges(const RelationSpec& a, const RelationSpec& b) {
    if (a.owner != b.owner || a.has_acl != b.has_acl || a.grants.size() != b.grants.size())
        return false;
    for (size_t i = 0; i < a.grants.size(); i++)
        if (grant_key(a.grants[i]) != grant_key(b.grants[i])) return false;
    return true;
}

std::vector<Statement> revoke_grants(const RelationSpec& spec, const std::string& target) {
    // REVOKE ALL ... CASCADE from each grantee of the owner, run as the caller (for the owner):
    // every grant another role made came down from one of those through a grant option, and
    // goes with it; a table's REVOKE takes its column privileges too.
    std::vector<Statement> out;
    std::set<std::string> done;
    for (const auto& g : spec.grants)
        if (g.by_owner && done.insert(g.grantee).second)
            out.push_back(
                {fmt::format("REVOKE ALL ON TABLE {} FROM {} CASCADE", target, g.grantee)});
    return out;
}

bool privileges_taken_away(const RelationSpec& built, const RelationSpec& locked) {
    // Another owner, a change between the default ACL and an explicit one, or a grant of the
    // build's that the locked read lacks; a grant added since takes nothing away.
    if (built.owner != locked.owner || built.has_acl != locked.has_acl) return true;
    for (const auto& g : built.grants)
        if (std::none_of(locked.grants.begin(), locked.grants.end(),
                         [&](const Grant& l) { return grant_key(l) == grant_key(g); }))
            return true;
    return false;
}

bool same_settings(const RelationSpec& a, const RelationSpec& b) {
    auto key = [](const ColumnSettings& c) {
        return std::make_tuple(c.column, c.statistics, c.options, c.storage, c.compression);
    };
    if (a.reloptions != b.reloptions || a.tablespace != b.tablespace ||
        a.access_method != b.access_method || a.column_settings.size() != b.column_settings.size())
        return false;
    for (size_t i = 0; i < a.column_settings.size(); i++)
        if (key(a.column_settings[i]) != key(b.column_settings[i])) return false;
    return true;
}

std::string relation_comment(const RelationSpec& spec, const std::string& kind,
                             const std::string& target) {
    // COMMENT ON kind target IS ... | NULL.
    return fmt::format("COMMENT ON {} {} IS {}", kind, target,
                       spec.comment ? pg::quote_literal(*spec.comment) : std::string("NULL"));
}

std::vector<std::string> column_comments(const RelationSpec& spec, const std::string& target,
                                         const std::set<std::string>& target_columns) {
    // COMMENT ON COLUMN for each column the target still has.
    std::vector<std::string> out;
    for (const auto& [col, text] : spec.column_comments) {
        if (!target_columns.count(col)) continue;
        out.push_back(fmt::format("COMMENT ON COLUMN {}.{} IS {}", target, pg::quote_ident(col),
                                  pg::quote_literal(text)));
    }
    return out;
}

std::vector<std::string> column_settings(const RelationSpec& spec, const std::string& kind,
                                         const std::string& target,
                                         const std::set<std::string>& target_columns) {
    // One ALTER per setting, for the columns the target still has.
    std::vector<std::string> out;
    for (const auto& c : spec.column_settings) {
        if (!target_columns.count(c.column)) continue;
        std::string column =
            fmt::format("ALTER {} {} ALTER COLUMN {}", kind, target, pg::quote_ident(c.column));
        if (c.statistics) out.push_back(fmt::format("{} SET STATISTICS {}", column, *c.statistics));
        if (!c.options.empty()) {
            std::string list;
            for (const auto& o : c.options) list += (list.empty() ? "" : ", ") + key_value(o);
            out.push_back(fmt::format("{} SET ({})", column, list));
        }
        if (c.storage) out.push_back(fmt::format("{} SET STORAGE {}", column, *c.storage));
        if (c.compression)
            out.push_back(fmt::format("{} SET COMPRESSION {}", column, *c.compression));
    }
    return out;
}

std::vector<std::string> comments(const RelationSpec& spec, const std::string& kind,
                                  const std::string& target,
                                  const std::set<std::string>& target_columns) {
    // The relation's comment, then its columns'.
    std::vector<std::string> out{relation_comment(spec, kind, target)};
    for (auto& c : column_comments(spec, target, target_columns)) out.push_back(std::move(c));
    return out;
}

std::set<std::string> column_names(pg::Spi& spi, Oid relid) {
    // pg_attribute's user columns.
    auto r = spi.exec(
        "SELECT attname::pg_catalog.text FROM pg_catalog.pg_attribute WHERE attrelid "
        "OPERATOR(pg_catalog.=) $1 "
        "AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped",
        {pg::Param::oid(relid)});
    std::set<std::string> out;
    for (const auto& row : r.rows) out.insert(row[0].as_string());
    return out;
}

std::vector<DependentSpec> dependent_specs(pg::Spi& spi, Oid relid) {
    // dependents() in order, each with its definition and what hangs off it.
    std::vector<DependentSpec> out;
    for (auto& d : dependents(spi, relid)) {
        if (d.relkind != 'v' && d.relkind != 'm') {
            // Not re-creatable (a rule on a table); the swap refuses it by its relkind.
            DependentSpec s;
            s.rel = std::move(d);
            out.push_back(std::move(s));
            continue;
        }
        pg::GucScope guc;
        guc.set("search_path", "");
        DependentSpec s;
        // A dependent that a concurrent swap or DROP replaced since the graph was read: its row
        // is gone, or pg_get_viewdef finds no relation under the OID. Either way the swap is
        // retried, never failed with an internal error.
        auto changed = [&] {
            return Error(sqlstate::serialization_failure,
                         fmt::format("a dependent of relation {} changed concurrently", relid))
                .detail("Another session dropped or replaced it while it was read.")
                .hint("Retry the call.");
        };
        std::optional<pg::Result> found;
        try {
            found = spi.exec(R"SQL(
            SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text,
                   pg_catalog.pg_get_viewdef(c.oid, false), c.relispopulated
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
            WHERE c.oid OPERATOR(pg_catalog.=) $1
        )SQL",
                             {pg::Param::oid(d.oid)});
        } catch (const Error& e) {
            if (e.info().sqlstate != sqlstate::internal_error) throw;
            throw changed();
        }
        if (found->empty()) throw changed();
        const auto& row = found->first();
        s.schema = row[0].as_string();
        s.name = row[1].as_string();
        s.definition = row[2].as_string();
        while (!s.definition.empty() && (s.definition.back() == ';' || s.definition.back() == ' ' ||
                                         s.definition.back() == '\n'))
            s.definition.pop_back();
        s.populated = row[3].as_bool();
        s.spec = relation_spec(spi, d.oid);
        auto idx = spi.exec(R"SQL(
            SELECT pg_catalog.pg_get_indexdef(i.indexrelid), ic.relname::pg_catalog.text,
                   pg_catalog.obj_description(i.indexrelid, 'pg_class'), i.indisclustered
            FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
            WHERE i.indrelid OPERATOR(pg_catalog.=) $1 ORDER BY ic.relname
        )SQL",
                            {pg::Param::oid(d.oid)});
        for (const auto& ir : idx.rows) {
            s.index_definitions.push_back(ir[0].as_string());
            s.index_names.push_back(ir[1].as_string());
            s.index_comments.push_back(opt(ir[2]));
            if (ir[3].as_bool()) s.clustered_index = ir[1].as_string();
        }
        auto trg = spi.exec(
            "SELECT pg_catalog.pg_get_triggerdef(oid) FROM pg_catalog.pg_trigger "
            "WHERE tgrelid OPERATOR(pg_catalog.=) $1 AND NOT tgisinternal ORDER BY tgname",
            {pg::Param::oid(d.oid)});
        for (const auto& tr : trg.rows) s.trigger_definitions.push_back(tr[0].as_string());
        auto rules = spi.exec(
            "SELECT pg_catalog.pg_get_ruledef(oid) FROM pg_catalog.pg_rewrite "
            "WHERE ev_class OPERATOR(pg_catalog.=) $1 AND rulename OPERATOR(pg_catalog.<>) "
            "'_RETURN' ORDER BY rulename",
            {pg::Param::oid(d.oid)});
        for (const auto& rr : rules.rows) s.rule_definitions.push_back(rr[0].as_string());
        s.rel = std::move(d);
        out.push_back(std::move(s));
    }
    return out;
}

namespace {

char* walk_rule(Oid view, const RelationMap& replacements, bool deparse, bool* named_elsewhere) {
    // The view's ON SELECT rule action, copied (not rewritten: the dependent's own query), walked
    // with remap_walker, then printed (palloc'd) when asked, under the caller's search_path.
    std::vector<Oid> rowtypes;
    for (const auto& entry : replacements) {
        Oid from = entry.first;
        rowtypes.push_back(pg::call([&] { return get_rel_type_id(from); }));
    }
    Remap remap{&replacements, &rowtypes, false};
    Remap* context = &remap;
    bool found = true;
    char* text = pg::call([&]() -> char* {
        Relation rel = relation_open(view, AccessShareLock);
        Query* q = nullptr;
        for (int i = 0; rel->rd_rules != nullptr && i < rel->rd_rules->numLocks && !q; i++)
            if (rel->rd_rules->rules[i]->event == CMD_SELECT)
                q = static_cast<Query*>(copyObjectImpl(linitial(rel->rd_rules->rules[i]->actions)));
        relation_close(rel, NoLock);
        if (q == nullptr) {
            found = false;
            return nullptr;
        }
        query_tree_walker(q, pg::as_walker(remap_walker), context, QTW_EXAMINE_RTES_BEFORE);
        return deparse ? pg_get_querydef(q, false) : nullptr;
    });
    if (!found)
        throw Error(sqlstate::serialization_failure,
                    fmt::format("a dependent of the swapped view changed concurrently"))
            .detail("Another session dropped or replaced it while the swap read it.")
            .hint("Retry the call.");
    *named_elsewhere = remap.named_elsewhere;
    return text;
}

}  // namespace

bool named_beyond_relations(pg::Spi& spi, const std::vector<Oid>& dependents,
                            const std::vector<Oid>& replaced) {
    // Their queries' own references (a regclass constant naming the relation itself; a row type
    // in an expression) by walking them, then pg_depend of their ON SELECT rules: a reference to
    // a replaced relation's row type or array type (a cast, a column definition list, a regtype
    // constant) or to one of its indexes (a regclass constant).
    RelationMap identity;
    for (Oid r : replaced) identity.emplace_back(r, r);
    for (Oid d : dependents) {
        bool named = false;
        walk_rule(d, identity, false, &named);
        if (named) return true;
    }
    auto r = spi.exec(R"SQL(
        SELECT 1 FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_rewrite w ON w.oid OPERATOR(pg_catalog.=) d.objid
        WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
          AND w.ev_class OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])
          AND ((d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
                AND d.refobjid OPERATOR(pg_catalog.=) ANY (
                    SELECT t.oid FROM pg_catalog.pg_type t
                    WHERE t.typrelid OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.oid[])
                    UNION ALL
                    SELECT t.typarray FROM pg_catalog.pg_type t
                    WHERE t.typrelid OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.oid[])))
            OR (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                AND d.refobjid OPERATOR(pg_catalog.=) ANY (
                    SELECT i.indexrelid FROM pg_catalog.pg_index i
                    WHERE i.indrelid OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.oid[]))))
        LIMIT 1
    )SQL",
                      {pg::Param::oid_array(dependents), pg::Param::oid_array(replaced)});
    return !r.empty();
}

std::string mapped_definition(Oid view, const std::vector<std::pair<Oid, Oid>>& replacements) {
    // Every name qualified; the caller creates it with the view's column names, which a RENAME
    // COLUMN changed in pg_attribute, not in the rule.
    pg::GucScope guc;
    guc.set("search_path", "");
    bool named = false;
    char* text = walk_rule(view, replacements, true, &named);
    std::string out(text);
    pg::call([&] { pfree(text); });
    while (!out.empty() && (out.back() == ';' || out.back() == ' ' || out.back() == '\n'))
        out.pop_back();
    return out;
}

}  // namespace mv::catalog
