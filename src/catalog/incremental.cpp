// Incremental refresh, the catalog side (see incremental.hpp): the supported-class check over
// PostgreSQL's rewritten query tree, the key and the sources, and the SQL of a refresh, built by
// changing a copy of that tree and deparsing it with PostgreSQL's own ruleutils.
#include "catalog/incremental.hpp"

#include "boundary/scopes.hpp"

extern "C" {
#include "access/table.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_inherits.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/ruleutils.h"
#include "common/hashfn.h"
#include "utils/typcache.h"
}

namespace mv::catalog {

namespace {

using pg::as_walker;

template <typename T>
T* copy_node(const T* node) {
    // copyObject without the typeof PostgreSQL's macro uses.
    return static_cast<T*>(copyObjectImpl(node));
}

std::string relation_quoted(Oid relid) {
    // schema.name of a relation, quoted.
    const char* nsp = pg::call([&] { return get_namespace_name(get_rel_namespace(relid)); });
    const char* rel = pg::call([&] { return get_rel_name(relid); });
    return pg::quote_qualified(nsp ? nsp : "?", rel ? rel : "?");
}

std::string function_name(Oid fn) {
    const char* name = pg::call([&] { return get_func_name(fn); });
    return std::string(name ? name : "?") + "()";
}

// --- outer joins ---

void collect_rtindexes(Node* n, Bitmapset** set) {
    // Every range table index below a join tree node (its tables and its joins).
    if (n == nullptr) return;
    if (IsA(n, RangeTblRef)) {
        *set = bms_add_member(*set, reinterpret_cast<RangeTblRef*>(n)->rtindex);
    } else if (IsA(n, JoinExpr)) {
        auto* j = reinterpret_cast<JoinExpr*>(n);
        if (j->rtindex > 0) *set = bms_add_member(*set, j->rtindex);
        collect_rtindexes(j->larg, set);
        collect_rtindexes(j->rarg, set);
    } else if (IsA(n, FromExpr)) {
        ListCell* lc;
        foreach (lc, reinterpret_cast<FromExpr*>(n)->fromlist)
            collect_rtindexes(static_cast<Node*>(lfirst(lc)), set);
    }
}

Node* nullable_side(JoinExpr* j) {
    return j->jointype == JOIN_LEFT ? j->rarg : j->jointype == JOIN_RIGHT ? j->larg : nullptr;
}

extern "C" Node* null_vars_mutator(Node* node, void* ctx) {
    // Vars of the given relations (this query level) become typed NULLs.
    if (node == nullptr) return nullptr;
    if (IsA(node, Var)) {
        Var* v = reinterpret_cast<Var*>(node);
        if (v->varlevelsup == 0 && bms_is_member(v->varno, static_cast<Bitmapset*>(ctx)))
            return reinterpret_cast<Node*>(makeNullConst(v->vartype, v->vartypmod, v->varcollid));
    }
    using Mutator = Node* (*)();
    return expression_tree_mutator(
        node, reinterpret_cast<Mutator>(reinterpret_cast<void (*)(void)>(null_vars_mutator)), ctx);
}

void null_quals_outside(Node* n, JoinExpr* skip, Bitmapset* set) {
    // The join conditions of every join but `skip` and those below it.
    if (n == nullptr || n == reinterpret_cast<Node*>(skip)) return;
    if (IsA(n, JoinExpr)) {
        auto* j = reinterpret_cast<JoinExpr*>(n);
        j->quals = null_vars_mutator(j->quals, set);
        null_quals_outside(j->larg, skip, set);
        null_quals_outside(j->rarg, skip, set);
    } else if (IsA(n, FromExpr)) {
        auto* f = reinterpret_cast<FromExpr*>(n);
        f->quals = null_vars_mutator(f->quals, set);
        ListCell* lc;
        foreach (lc, f->fromlist) null_quals_outside(static_cast<Node*>(lfirst(lc)), skip, set);
    }
}

void null_extend(Query* q, JoinExpr* j, Node* nullable) {
    // The rows of q as if j had found no match on its nullable side: that side's columns NULL
    // in q's output and in every condition above j (its own ON clause still picks the rows).
    Bitmapset* set = nullptr;
    collect_rtindexes(nullable, &set);
    q->targetList =
        reinterpret_cast<List*>(null_vars_mutator(reinterpret_cast<Node*>(q->targetList), set));
    null_quals_outside(reinterpret_cast<Node*>(q->jointree), j, set);
}

void outer_joins_below(Node* n, std::vector<JoinExpr*>* out) {
    if (n == nullptr) return;
    if (IsA(n, JoinExpr)) {
        auto* j = reinterpret_cast<JoinExpr*>(n);
        if (j->jointype == JOIN_LEFT || j->jointype == JOIN_RIGHT) out->push_back(j);
        outer_joins_below(j->larg, out);
        outer_joins_below(j->rarg, out);
    } else if (IsA(n, FromExpr)) {
        ListCell* lc;
        foreach (lc, reinterpret_cast<FromExpr*>(n)->fromlist)
            outer_joins_below(static_cast<Node*>(lfirst(lc)), out);
    }
}

std::vector<Node*> quals_outside(Node* n, JoinExpr* skip) {
    std::vector<Node*> out;
    std::function<void(Node*)> walk = [&](Node* x) {
        if (x == nullptr || x == reinterpret_cast<Node*>(skip)) return;
        if (IsA(x, JoinExpr)) {
            auto* j = reinterpret_cast<JoinExpr*>(x);
            if (j->quals) out.push_back(j->quals);
            walk(j->larg);
            walk(j->rarg);
        } else if (IsA(x, FromExpr)) {
            auto* f = reinterpret_cast<FromExpr*>(x);
            if (f->quals) out.push_back(f->quals);
            ListCell* lc;
            foreach (lc, f->fromlist) walk(static_cast<Node*>(lfirst(lc)));
        }
    };
    walk(n);
    return out;
}

struct Checker {
    std::vector<std::string>* reasons;
    void add(const std::string& r) {
        if (std::find(reasons->begin(), reasons->end(), r) == reasons->end()) reasons->push_back(r);
    }
};

struct ExprScan {
    Oid mutable_fn = InvalidOid;
    int system_attno = 0;
    std::vector<Oid>* functions = nullptr;  // every function the query calls
};

extern "C" bool not_immutable(Oid fn, void*) {
    return func_volatile(fn) != PROVOLATILE_IMMUTABLE;
}

extern "C" bool expr_scan_walker(Node* node, void* ctx) {
    // The first function that is not immutable, and the first system column.
    auto* scan = static_cast<ExprScan*>(ctx);
    if (node == nullptr) return false;
    if (IsA(node, Var)) {
        Var* v = reinterpret_cast<Var*>(node);
        if (v->varattno < 0 && scan->system_attno == 0) scan->system_attno = v->varattno;
        return false;
    }
    if (IsA(node, Query))
        return query_tree_walker(reinterpret_cast<Query*>(node), as_walker(expr_scan_walker), ctx,
                                 0);
    {
        // check_functions_in_node reports whether the callback said yes; find which function.
        auto cb = [](Oid fn, void* c) -> bool {
            auto* sc = static_cast<ExprScan*>(c);
            sc->functions->push_back(fn);
            if (func_volatile(fn) == PROVOLATILE_IMMUTABLE) return false;
            sc->mutable_fn = fn;
            return false;
        };
        check_functions_in_node(node, cb, scan);
    }
    return expression_tree_walker(node, as_walker(expr_scan_walker), ctx);
}

struct Analyzer {
    IncAnalysis* out;
    Checker check;
    std::vector<Query*> branches;
    Oid owner = InvalidOid;  // the role the derivation runs as
    std::string json_column;

    size_t source_of(Oid relid, bool inh) {
        for (size_t i = 0; i < out->sources.size(); i++)
            if (out->sources[i].relid == relid) {
                if (inh) add_inheritors(out->sources[i]);
                return i;
            }
        IncSource s;
        s.relid = relid;
        s.quoted = relation_quoted(relid);
        s.relkind = pg::call([&] { return get_rel_relkind(relid); });
        s.capture.push_back(relid);
        if (inh) add_inheritors(s);
        out->sources.push_back(std::move(s));
        return out->sources.size() - 1;
    }

    static void add_inheritors(IncSource& s) {
        List* all = pg::call([&] { return find_all_inheritors(s.relid, NoLock, nullptr); });
        ListCell* lc;
        foreach (lc, all) {
            Oid child = lfirst_oid(lc);
            if (std::find(s.capture.begin(), s.capture.end(), child) == s.capture.end())
                s.capture.push_back(child);
        }
    }

    void relation(RangeTblEntry* rte, int branch, int* ordinal) {
        // A base table: capturable (plain or partitioned), or a reason.
        char kind = pg::call([&] { return get_rel_relkind(rte->relid); });
        std::string name = relation_quoted(rte->relid);
        if (rte->tablesample) check.add(fmt::format("TABLESAMPLE on {}", name));
        if (rte->relid < FirstNormalObjectId) {
            check.add(fmt::format("system catalog {} (its changes fire no triggers)", name));
            return;
        }
        if (name.rfind("matviews.", 0) == 0) {
            check.add(fmt::format("{}, a table of matviews", name));
            return;
        }
        switch (kind) {
            case RELKIND_RELATION:
            case RELKIND_PARTITIONED_TABLE:
                break;
            case RELKIND_FOREIGN_TABLE:
                check.add(
                    fmt::format("foreign table {} (its changes happen on another server)", name));
                return;
            case RELKIND_MATVIEW:
                check.add(
                    fmt::format("materialized view {} (it changes by refreshes, which no "
                                "trigger captures; refresh with cascade instead)",
                                name));
                return;
            default:
                check.add(fmt::format("{} {}", relkind_name(kind), name));
                return;
        }
        // The derivation reads a changed table's rows from the log, as the view's owner, with
        // every column: the owner must be able to read them all, and see them all.
        if (OidIsValid(rte->checkAsUser) && rte->checkAsUser != owner)
            check.add(fmt::format("{} read through a view owned by another role", name));
        if (pg::call([&] { return pg_class_aclcheck(rte->relid, owner, ACL_SELECT); }) !=
            ACLCHECK_OK)
            check.add(fmt::format("its owner lacks SELECT on all columns of {}", name));
        if (pg::call([&] { return check_enable_rls(rte->relid, owner, true); }) == RLS_ENABLED ||
            rte->securityQuals != NIL)
            check.add(fmt::format("row-level security on {}", name));
        // A json column is logged as its text: the query must not read it (its value would be
        // the text, not the document), while a table's other json columns may be anything.
        pg::call([&] {
            Relation rel = table_open(rte->relid, NoLock);
            TupleDesc desc = RelationGetDescr(rel);
            bool whole = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, rte->selectedCols);
            for (int i = 0; i < desc->natts; i++) {
                Form_pg_attribute att = TupleDescAttr(desc, i);
                if (att->attisdropped || getBaseType(att->atttypid) != JSONOID) continue;
                if (whole || bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber,
                                           rte->selectedCols))
                    json_column = NameStr(att->attname);
            }
            table_close(rel, NoLock);
        });
        if (!json_column.empty()) {
            check.add(fmt::format("json column {} of {} (use jsonb)", json_column, name));
            json_column.clear();
        }
        size_t s = source_of(rte->relid, rte->inh);
        out->sources[s].occurrences++;
        out->occurrences.push_back({branch, (*ordinal)++, s});
    }

    static std::string relkind_name(char k) {
        switch (k) {
            case RELKIND_VIEW:
                return "view";
            case RELKIND_SEQUENCE:
                return "sequence";
            default:
                return "relation";
        }
    }

    void jointree(Query* q, Node* node, int branch, int* ordinal) {
        // FROM items in walk order: the order walk_copy (derive_keys_sql) numbers them.
        if (node == nullptr) return;
        if (IsA(node, FromExpr)) {
            ListCell* lc;
            foreach (lc, reinterpret_cast<FromExpr*>(node)->fromlist)
                jointree(q, static_cast<Node*>(lfirst(lc)), branch, ordinal);
            return;
        }
        if (IsA(node, JoinExpr)) {
            JoinExpr* j = reinterpret_cast<JoinExpr*>(node);
            if (j->jointype == JOIN_FULL) check.add("FULL JOIN");
            jointree(q, j->larg, branch, ordinal);
            jointree(q, j->rarg, branch, ordinal);
            return;
        }
        if (!IsA(node, RangeTblRef)) return;
        RangeTblEntry* rte = rt_fetch(reinterpret_cast<RangeTblRef*>(node)->rtindex, q->rtable);
        switch (rte->rtekind) {
            case RTE_RELATION:
                relation(rte, branch, ordinal);
                break;
            case RTE_SUBQUERY:
                if (rte->security_barrier)
                    check.add(fmt::format("security_barrier view {}", rte->eref->aliasname));
                nested(rte->subquery, rte->eref->aliasname, branch, ordinal);
                break;
            case RTE_FUNCTION:
                check.add(fmt::format("function in FROM ({})", rte->eref->aliasname));
                break;
            case RTE_TABLEFUNC:
                check.add("XMLTABLE in FROM");
                break;
            default:
                break;  // VALUES, an empty FROM
        }
    }

    void outer_join_conditions(Query* q) {
        // Above an outer join, a condition on its nullable side must be false or null when that
        // side is NULL (strict, as c.region = 'x'): one that can hold for a missing match
        // (c.id IS NULL, COALESCE(c.x, 0) = 0) makes a new match remove rows, which the affected
        // keys would not show.
        std::vector<JoinExpr*> joins;
        outer_joins_below(reinterpret_cast<Node*>(q->jointree), &joins);
        for (JoinExpr* j : joins) {
            Bitmapset* nullable = nullptr;
            pg::call([&] { collect_rtindexes(nullable_side(j), &nullable); });
            std::vector<Node*> quals = quals_outside(reinterpret_cast<Node*>(q->jointree), j);
            if (q->havingQual) quals.push_back(q->havingQual);
            for (Node* qual : quals) {
                bool strict = pg::call([&] {
                    Bitmapset* hit = bms_intersect(pull_varnos(nullptr, qual), nullable);
                    return bms_is_empty(hit) || bms_is_subset(hit, find_nonnullable_rels(qual));
                });
                if (!strict)
                    check.add(
                        "a condition above a LEFT JOIN that can hold when its nullable side is "
                        "NULL (IS NULL, COALESCE, OR ...)");
            }
        }
    }

    void common(Query* q) {
        // What no level of the query may use.
        if (q->cteList != NIL) check.add(q->hasRecursive ? "recursive WITH" : "WITH (a CTE)");
        if (q->hasWindowFuncs) check.add("window function");
        if (q->limitCount || q->limitOffset) check.add("LIMIT/OFFSET");
        if (q->hasTargetSRFs) check.add("set-returning function in the target list");
        if (q->hasSubLinks) check.add("subquery in an expression (EXISTS, IN, ANY or scalar)");
        if (q->groupingSets != NIL) check.add("GROUPING SETS, ROLLUP or CUBE");
        if (q->hasDistinctOn) check.add("DISTINCT ON");
        if (q->rowMarks != NIL) check.add("FOR UPDATE/SHARE");
        if (q->hasModifyingCTE) check.add("data-modifying WITH");
    }

    void nested(Query* q, const char* alias, int branch, int* ordinal) {
        // A FROM subquery or an expanded plain view: joins and filters only (monotone), or a
        // UNION ALL of such.
        common(q);
        if (q->hasAggs || q->groupClause != NIL || q->havingQual)
            check.add(fmt::format("aggregation inside the FROM item {}", alias));
        if (q->distinctClause != NIL)
            check.add(fmt::format("DISTINCT inside the FROM item {}", alias));
        if (q->setOperations) {
            setops(q, q->setOperations, false, branch, ordinal);
            return;
        }
        jointree(q, reinterpret_cast<Node*>(q->jointree), branch, ordinal);
    }

    void setops(Query* q, Node* node, bool top, int branch, int* ordinal) {
        if (IsA(node, SetOperationStmt)) {
            auto* s = reinterpret_cast<SetOperationStmt*>(node);
            if (s->op != SETOP_UNION || !s->all)
                check.add("UNION without ALL, INTERSECT or EXCEPT");
            setops(q, s->larg, top, branch, ordinal);
            setops(q, s->rarg, top, branch, ordinal);
            return;
        }
        RangeTblEntry* rte = rt_fetch(reinterpret_cast<RangeTblRef*>(node)->rtindex, q->rtable);
        if (top) {
            top_branch(rte->subquery);
        } else {
            nested(rte->subquery, "UNION ALL branch", branch, ordinal);
        }
    }

    void top_branch(Query* q) {
        // A branch of the view: joins, filters, then GROUP BY with any aggregate, HAVING, or
        // DISTINCT.
        common(q);
        if (q->hasAggs && q->groupClause == NIL)
            check.add("aggregate without GROUP BY (the view is one row every change affects)");
        int branch = static_cast<int>(branches.size());
        branches.push_back(q);
        int ordinal = 0;
        if (q->setOperations) {
            check.add("UNION ALL nested inside a branch");
            return;
        }
        jointree(q, reinterpret_cast<Node*>(q->jointree), branch, &ordinal);
        outer_join_conditions(q);
    }

    void view_query(Query* q) {
        common(q);
        if (q->setOperations) {
            if (q->sortClause != NIL) check.add("ORDER BY over UNION ALL");
            setops(q, q->setOperations, true, 0, nullptr);
        } else {
            top_branch(q);
        }
        ExprScan scan;
        scan.functions = &out->functions;
        query_tree_walker(q, as_walker(expr_scan_walker), &scan, 0);
        if (scan.mutable_fn != InvalidOid)
            check.add(
                fmt::format("volatile or stable function {}", function_name(scan.mutable_fn)));
        if (scan.system_attno != 0) check.add("system column (ctid, xmin, tableoid, ...)");
        out->branches = static_cast<int>(branches.size());
    }
};

TargetEntry* output_entry(Query* branch, int attno) {
    // The branch's attno-th visible output column.
    int n = 0;
    ListCell* lc;
    foreach (lc, branch->targetList) {
        auto* te = static_cast<TargetEntry*>(lfirst(lc));
        if (te->resjunk) continue;
        if (++n == attno) return te;
    }
    return nullptr;
}

Query* rule_query(Oid relid) {
    // The view's ON SELECT rule action, copied, rewritten with plain views expanded.
    return pg::call([&] {
        Relation rel = table_open(relid, NoLock);
        Query* q = nullptr;
        if (rel->rd_rules != nullptr && rel->rd_rules->numLocks == 1) {
            RewriteRule* rule = rel->rd_rules->rules[0];
            q = copy_node(linitial_node(Query, rule->actions));
        }
        table_close(rel, NoLock);
        if (q == nullptr) return q;
        AcquireRewriteLocks(q, true, false);
        List* rewritten = QueryRewrite(q);
        return list_length(rewritten) == 1 ? linitial_node(Query, rewritten) : nullptr;
    });
}

void key_of_view(pg::Spi& spi, IncAnalysis& a, Oid relid) {
    // The first unique index CONCURRENTLY accepts, by name.
    auto r = spi.exec(R"SQL(
        SELECT ic.relname::pg_catalog.text,
               pg_catalog.array_to_string(i.indkey::pg_catalog.int2[], ',')
        FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
        JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) ic.relam
        WHERE i.indrelid OPERATOR(pg_catalog.=) $1
          AND i.indisunique AND i.indisvalid AND i.indimmediate
          AND i.indpred IS NULL AND i.indexprs IS NULL
          AND am.amname OPERATOR(pg_catalog.=) 'btree'
        ORDER BY i.indnatts, ic.relname LIMIT 1
    )SQL",
                      {pg::Param::oid(relid)});
    if (r.empty()) return;
    a.key_index = r.first()[0].as_string();
    std::string keys = r.first()[1].as_string() + ",";  // "1,3,"
    std::vector<int> attnos;
    for (size_t i = 0; i < keys.size();) {
        size_t j = keys.find(',', i);
        attnos.push_back(std::stoi(keys.substr(i, j - i)));
        i = j + 1;
    }
    for (int attno : attnos) {
        KeyColumn k;
        k.attno = attno;
        k.name = pg::call([&] { return get_attname(relid, attno, false); });
        k.type = pg::call([&] { return get_atttype(relid, attno); });
        k.array_type = pg::call([&] { return get_array_type(k.type); });
        a.key.push_back(std::move(k));
    }
}

void finish_key(pg::Spi& spi, IncAnalysis& a, Analyzer& an) {
    // Every key column must be computed without aggregates in every branch (the derivation
    // projects it before grouping), and have an array type and a default equality.
    for (auto& k : a.key) {
        k.type_sql = pg::call([&] { return format_type_be_qualified(k.type); });
        Oid eq = pg::call([&] { return lookup_type_cache(k.type, TYPECACHE_EQ_OPR)->eq_opr; });
        if (eq == InvalidOid || k.array_type == InvalidOid) {
            an.check.add(
                fmt::format("key column {} has no equality operator or array type", k.name));
            continue;
        }
        k.eq_sql = spi.scalar(
                          "SELECT pg_catalog.format('OPERATOR(%I.%s)', n.nspname, o.oprname) "
                          "FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n "
                          "ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace "
                          "WHERE o.oid OPERATOR(pg_catalog.=) $1",
                          {pg::Param::oid(eq)})
                       .as_string();
        for (size_t b = 0; b < an.branches.size(); b++) {
            TargetEntry* te = output_entry(an.branches[b], k.attno);
            if (te == nullptr || contain_agg_clause(reinterpret_cast<Node*>(te->expr)))
                an.check.add(fmt::format(
                    "key column {} is computed by an aggregate{}", k.name,
                    an.branches.size() > 1 ? fmt::format(" in UNION ALL branch {}", b + 1) : ""));
        }
    }
}

void suggest_key(IncAnalysis& a, Analyzer& an, Query* q) {
    // GROUP BY columns, DISTINCT columns, or the primary keys of every joined table, when the
    // view outputs them all as plain columns.
    if (an.branches.size() != 1) return;
    Query* b = an.branches[0];
    auto output_names = [&](auto pick) {
        std::vector<std::string> names;
        ListCell* lc;
        foreach (lc, b->targetList) {
            auto* te = static_cast<TargetEntry*>(lfirst(lc));
            if (!te->resjunk && pick(te)) names.push_back(te->resname ? te->resname : "?");
        }
        return names;
    };
    if (b->groupClause != NIL) {
        std::vector<std::string> names = output_names([&](TargetEntry* te) {
            return te->ressortgroupref != 0 &&
                   get_sortgroupref_clause_noerr(te->ressortgroupref, b->groupClause) != nullptr;
        });
        if (static_cast<int>(names.size()) >= list_length(b->groupClause)) a.suggested_key = names;
        return;
    }
    if (b->distinctClause != NIL) {
        a.suggested_key = output_names([](TargetEntry*) { return true; });
        return;
    }
    // Primary keys: each base table of the branch's own FROM list.
    std::vector<std::string> names;
    int n = 0;
    ListCell* lc;
    foreach (lc, b->rtable) {
        n++;
        auto* rte = static_cast<RangeTblEntry*>(lfirst(lc));
        if (rte->rtekind != RTE_RELATION || !rte->inFromCl) continue;
        Oid constraint = InvalidOid;
        Bitmapset* pk =
            pg::call([&] { return get_primary_key_attnos(rte->relid, false, &constraint); });
        if (pk == nullptr) return;
        int member = -1;
        while ((member = bms_next_member(pk, member)) >= 0) {
            AttrNumber attno = member + FirstLowInvalidHeapAttributeNumber;
            auto found = output_names([&](TargetEntry* te) {
                Var* v = IsA(te->expr, Var) ? reinterpret_cast<Var*>(te->expr) : nullptr;
                return v && v->varno == n && v->varattno == attno && v->varlevelsup == 0;
            });
            if (found.empty()) return;
            names.push_back(found[0]);
        }
    }
    (void)q;
    a.suggested_key = names;
}

void describe_sources(IncAnalysis& a, Analyzer& an) {
    // explain's mapping: whether a change gives the key columns directly (they are that table's
    // columns in every branch) or through the joins.
    for (size_t s = 0; s < a.sources.size(); s++) {
        std::vector<std::string> direct;
        for (const auto& k : a.key) {
            bool all = !an.branches.empty();
            for (Query* b : an.branches) {
                TargetEntry* te = output_entry(b, k.attno);
                Var* v = te && IsA(te->expr, Var) ? reinterpret_cast<Var*>(te->expr) : nullptr;
                RangeTblEntry* rte =
                    v && v->varlevelsup == 0 ? rt_fetch(v->varno, b->rtable) : nullptr;
                if (!(rte && rte->rtekind == RTE_RELATION && rte->relid == a.sources[s].relid))
                    all = false;
            }
            if (all) direct.push_back(k.name);
        }
        IncSource& src = a.sources[s];
        if (a.key.empty())
            src.maps = "no key: the view has no unique index";
        else if (direct.size() == a.key.size())
            src.maps =
                fmt::format("its changed rows give the key ({}) directly", fmt::join(direct, ", "));
        else
            src.maps = fmt::format(
                "the key of the view rows it affects is found by joining its changed rows "
                "with the other tables of the query{}",
                src.occurrences > 1
                    ? fmt::format(", once per each of its {} occurrences", src.occurrences)
                    : "");
    }
}

void add_ancestors(pg::Spi& spi, IncAnalysis& a) {
    // A write through a partitioned or inheritance parent fires the parent's statement
    // triggers only: a view that reads a partition or child captures its ancestors too (their
    // rows are the children's, a superset of this one's).
    for (auto& s : a.sources) {
        auto r = spi.exec(R"SQL(
            WITH RECURSIVE up(oid) AS (
                SELECT $1::pg_catalog.oid
              UNION
                SELECT i.inhparent FROM pg_catalog.pg_inherits i
                JOIN up ON i.inhrelid OPERATOR(pg_catalog.=) up.oid)
            SELECT oid FROM up WHERE oid OPERATOR(pg_catalog.<>) $1
        )SQL",
                          {pg::Param::oid(s.relid)});
        for (const auto& row : r.rows) {
            Oid parent = static_cast<Oid>(row[0].as_int());
            if (std::find(s.capture.begin(), s.capture.end(), parent) == s.capture.end())
                s.capture.push_back(parent);
        }
    }
}

IncAnalysis analyze(pg::Spi& spi, Query* q, Oid relid, Oid owner) {
    IncAnalysis a;
    Analyzer an{&a, Checker{&a.reasons}, {}, owner};
    if (q == nullptr) {
        a.reasons.push_back("the view's query could not be read as one SELECT");
        return a;
    }
    a.query = q;
    if (q->commandType != CMD_SELECT) an.check.add("not a SELECT");
    an.view_query(q);
    add_ancestors(spi, a);
    // What the view means, as PostgreSQL rewrote it (plain views expanded): a replaced view
    // under it changes this, and then the log cannot be trusted.
    a.fingerprint = pg::call([&] {
        char* text = nodeToString(q);
        return hash_bytes_extended(reinterpret_cast<const unsigned char*>(text),
                                   static_cast<int>(strlen(text)), 0);
    });
    if (relid != InvalidOid) {
        key_of_view(spi, a, relid);
        if (a.key.empty())
            an.check.add(
                "no unique index on the view (an incremental refresh recomputes rows by their "
                "key)");
        finish_key(spi, a, an);
    }
    suggest_key(a, an, q);
    describe_sources(a, an);
    return a;
}

// --- the derivation's tree surgery ---

// Other changed occurrences in one term beyond which a term is not split further (2^n terms),
// and the changed rows of the replaced occurrence beyond which it is not split at all.
constexpr int kMaxSplit = 3;
constexpr int64_t kMaxSplitRows = 1000;

struct Surgery {
    const IncAnalysis* a;
    const std::vector<bool>* changed;
    int target;         // the ordinal of the occurrence replaced by its changed rows
    int ordinal;        // walk counter
    bool split = true;  // split other changed occurrences (else: current plus deleted rows)
    int variant = 0;    // bit i set: the i-th other changed occurrence reads its deleted rows
    int others = 0;     // other changed occurrences met
    // Every LEFT/RIGHT join met, with its query level, in walk order (before any is made inner).
    struct OuterJoin {
        Query* level;
        JoinExpr* join;
        Node* nullable;  // its nullable side, recorded before the walk may make it inner
    };
    std::vector<OuterJoin> outer_joins = {};
};

std::string column_list(Relation rel, RangeTblEntry* rte, const char* alias,
                        std::vector<std::string>* names) {
    // Every attribute in attribute order (so the subquery's columns line up with the Vars that
    // referenced the table), a dropped one as a null placeholder.
    std::string cols;
    TupleDesc desc = RelationGetDescr(rel);
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        std::string name;
        if (i < list_length(rte->eref->colnames)) name = strVal(list_nth(rte->eref->colnames, i));
        if (att->attisdropped || name.empty()) name = fmt::format("mv_dropped_{}", i + 1);
        names->push_back(name);
        if (!cols.empty()) cols += ", ";
        if (att->attisdropped)
            cols += fmt::format("NULL::pg_catalog.int4 AS {}", pg::quote_ident(name));
        else
            cols += fmt::format("{}.{} AS {}", alias, pg::quote_ident(NameStr(att->attname)),
                                pg::quote_ident(name));
    }
    return cols;
}

Query* parse_subquery(const std::string& sql, int nparams) {
    std::vector<Oid> types(nparams, JSONBOID);
    return pg::call([&] {
        List* raw = raw_parser(sql.c_str(), RAW_PARSE_DEFAULT);
        return parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql.c_str(), types.data(),
                                         nparams, nullptr);
    });
}

enum class Replace { changed, deleted, current_and_deleted };

void replace_relation(RangeTblEntry* rte, size_t source, Replace what, int nparams) {
    // The occurrence becomes a subquery: its changed rows (old and new), its deleted old rows,
    // or (past kMaxSplit other changed occurrences) its current rows plus the deleted ones.
    std::vector<std::string> names;
    std::string table = relation_quoted(rte->relid);
    Relation rel = pg::call([&] { return table_open(rte->relid, NoLock); });
    std::string changed_cols = column_list(rel, rte, "r", &names);
    names.clear();
    std::string current_cols = column_list(rel, rte, "t", &names);
    pg::call([&] { table_close(rel, NoLock); });
    int all = static_cast<int>(2 * source + 1), old = all + 1;
    std::string sql =
        what != Replace::current_and_deleted
            ? fmt::format("SELECT {} FROM pg_catalog.jsonb_populate_recordset(NULL::{}, ${}) r",
                          changed_cols, table, what == Replace::changed ? all : old)
            : fmt::format(
                  "SELECT {} FROM {}{} t UNION ALL SELECT {} FROM "
                  "pg_catalog.jsonb_populate_recordset(NULL::{}, ${}) r",
                  current_cols, rte->inh ? "" : "ONLY ", table, changed_cols, table, old);
    Query* sub = parse_subquery(sql, nparams);
    pg::call([&] {
        List* colnames = NIL;
        for (const auto& n : names) colnames = lappend(colnames, makeString(pstrdup(n.c_str())));
        if (rte->alias == nullptr || rte->alias->colnames != NIL)
            rte->alias = makeAlias(rte->eref->aliasname, NIL);
        rte->eref = makeAlias(rte->eref->aliasname, colnames);
        rte->rtekind = RTE_SUBQUERY;
        rte->subquery = sub;
        rte->relid = InvalidOid;
        rte->relkind = 0;
        rte->rellockmode = 0;
        rte->tablesample = nullptr;
        rte->inh = false;
        rte->requiredPerms = 0;
        rte->checkAsUser = InvalidOid;
        rte->selectedCols = nullptr;
        rte->insertedCols = nullptr;
        rte->updatedCols = nullptr;
        rte->extraUpdatedCols = nullptr;
        rte->security_barrier = false;
    });
}

bool walk_copy(Surgery& s, Query* q, Node* node, int nparams);
bool walk_query(Surgery& s, Query* q, int nparams);

void empty_branches(Query* q, Node* node) {
    // Every branch below node yields no row (WHERE false).
    if (IsA(node, SetOperationStmt)) {
        empty_branches(q, reinterpret_cast<SetOperationStmt*>(node)->larg);
        empty_branches(q, reinterpret_cast<SetOperationStmt*>(node)->rarg);
        return;
    }
    Query* branch = rt_fetch(reinterpret_cast<RangeTblRef*>(node)->rtindex, q->rtable)->subquery;
    if (branch->setOperations) {
        empty_branches(branch, branch->setOperations);
        return;
    }
    pg::call(
        [&] { branch->jointree->quals = reinterpret_cast<Node*>(makeBoolConst(false, false)); });
}

bool walk_setops(Surgery& s, Query* q, Node* node, int nparams) {
    // A UNION ALL inside a FROM item, in the order Analyzer::setops walks it. The branches
    // without the target add no row that involves its changes: they are left out of this term
    // (their own changes have terms of their own).
    if (IsA(node, SetOperationStmt)) {
        auto* so = reinterpret_cast<SetOperationStmt*>(node);
        bool left = walk_setops(s, q, so->larg, nparams);
        bool right = walk_setops(s, q, so->rarg, nparams);
        if (left && !right) empty_branches(q, so->rarg);
        if (right && !left) empty_branches(q, so->larg);
        return left || right;
    }
    RangeTblEntry* rte = rt_fetch(reinterpret_cast<RangeTblRef*>(node)->rtindex, q->rtable);
    return walk_query(s, rte->subquery, nparams);
}

bool walk_query(Surgery& s, Query* q, int nparams) {
    if (q->setOperations) return walk_setops(s, q, q->setOperations, nparams);
    return walk_copy(s, q, reinterpret_cast<Node*>(q->jointree), nparams);
}

bool walk_copy(Surgery& s, Query* q, Node* node, int nparams) {
    // In the order Analyzer::jointree numbers occurrences: replace them, and make inner every
    // LEFT (RIGHT) JOIN that has the target occurrence on its nullable side. Returns whether the
    // target is below node.
    if (node == nullptr) return false;
    if (IsA(node, FromExpr)) {
        bool found = false;
        ListCell* lc;
        foreach (lc, reinterpret_cast<FromExpr*>(node)->fromlist)
            found |= walk_copy(s, q, static_cast<Node*>(lfirst(lc)), nparams);
        return found;
    }
    if (IsA(node, JoinExpr)) {
        JoinExpr* j = reinterpret_cast<JoinExpr*>(node);
        if (j->jointype == JOIN_LEFT || j->jointype == JOIN_RIGHT)
            s.outer_joins.push_back({q, j, nullable_side(j)});
        bool left = walk_copy(s, q, j->larg, nparams);
        bool right = walk_copy(s, q, j->rarg, nparams);
        if ((j->jointype == JOIN_LEFT && right) || (j->jointype == JOIN_RIGHT && left)) {
            j->jointype = JOIN_INNER;
            if (j->rtindex > 0) rt_fetch(j->rtindex, q->rtable)->jointype = JOIN_INNER;
        }
        return left || right;
    }
    if (!IsA(node, RangeTblRef)) return false;
    RangeTblEntry* rte = rt_fetch(reinterpret_cast<RangeTblRef*>(node)->rtindex, q->rtable);
    if (rte->rtekind == RTE_SUBQUERY) return walk_query(s, rte->subquery, nparams);
    if (rte->rtekind != RTE_RELATION) return false;
    int ordinal = s.ordinal++;
    size_t source = s.a->sources.size();
    for (size_t i = 0; i < s.a->sources.size(); i++)
        if (s.a->sources[i].relid == rte->relid) source = i;
    if (source == s.a->sources.size()) return false;
    if (ordinal == s.target) {
        replace_relation(rte, source, Replace::changed, nparams);
        return true;
    }
    if (!(*s.changed)[source]) return false;
    // Another changed occurrence reads its current rows plus its deleted old ones. Each result
    // row uses one row of it, from one or the other: the term splits in two, one with the table
    // itself (its indexes drive the join) and one with the deleted rows only.
    int bit = s.others++;
    if (!s.split || bit >= kMaxSplit)
        replace_relation(rte, source, Replace::current_and_deleted, nparams);
    else if (s.variant & (1 << bit))
        replace_relation(rte, source, Replace::deleted, nparams);
    return false;
}

std::vector<Query*> top_branches(Query* q) {
    std::vector<Query*> out;
    if (!q->setOperations) {
        out.push_back(q);
        return out;
    }
    std::function<void(Node*)> walk = [&](Node* n) {
        if (IsA(n, SetOperationStmt)) {
            walk(reinterpret_cast<SetOperationStmt*>(n)->larg);
            walk(reinterpret_cast<SetOperationStmt*>(n)->rarg);
            return;
        }
        out.push_back(rt_fetch(reinterpret_cast<RangeTblRef*>(n)->rtindex, q->rtable)->subquery);
    };
    walk(q->setOperations);
    return out;
}

std::string predicate(const IncAnalysis& a, const char* alias) {
    std::string p;
    for (size_t j = 0; j < a.key.size(); j++) {
        const auto& k = a.key[j];
        if (!p.empty()) p += " AND ";
        p += fmt::format("({0}.{1} {2} ANY (${3}) OR (${4} AND {0}.{1} IS NULL))", alias,
                         pg::quote_ident(k.name), k.eq_sql, 2 * j + 1, 2 * j + 2);
    }
    return p;
}

}  // namespace

IncAnalysis analyze_incremental(pg::Spi& spi, Oid relid) {
    Query* q = rule_query(relid);
    Oid owner = pg::call([&] {
        Relation rel = table_open(relid, NoLock);
        Oid o = rel->rd_rel->relowner;
        table_close(rel, NoLock);
        return o;
    });
    return analyze(spi, q, relid, owner);
}

IncAnalysis analyze_incremental_sql(pg::Spi& spi, const std::string& sql) {
    Query* q = pg::call([&] {
        List* raw = raw_parser(sql.c_str(), RAW_PARSE_DEFAULT);
        Query* parsed = parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql.c_str(), nullptr,
                                                  0, nullptr);
        List* rewritten = QueryRewrite(parsed);
        return list_length(rewritten) == 1 ? linitial_node(Query, rewritten) : nullptr;
    });
    return analyze(spi, q, InvalidOid, GetUserId());
}

std::string derive_keys_sql(const IncAnalysis& a, const std::vector<bool>& changed,
                            const std::vector<int64_t>& rows) {
    // One term per occurrence of a changed table, each deparsed from a copy of its branch with
    // that occurrence replaced, projected on the key before grouping.
    Query* q = static_cast<Query*>(a.query);
    int nparams = static_cast<int>(2 * a.sources.size());
    std::vector<std::string> terms;
    pg::GucScope guc;
    guc.set("search_path", "");  // ruleutils then qualifies every name it prints
    std::vector<Query*> branches = top_branches(q);
    int outer = 0;   // the outer joins the last term's walk met
    int others = 0;  // the other changed occurrences the last term's walk met
    auto term = [&](const IncOccurrence& o, int null_join,
                    int variant) -> std::optional<std::string> {
        // The occurrence's term; with null_join >= 0, the same rows as if that outer join had
        // found no match: a row whose match comes or goes changes its null-extended row, whose
        // key may differ (a key column from the nullable side is NULL, or COALESCEd).
        Query* copy = pg::call([&] { return copy_node(branches[o.branch]); });
        Surgery s{&a, &changed, o.ordinal, 0};
        // Few changed rows: index-driven joins with the other changed tables themselves (the
        // split). Many: one hash join with their current plus deleted rows (the planner takes
        // a function scan for 100 rows, and nested loops over thousands would be quadratic).
        s.split = rows[o.source] <= kMaxSplitRows;
        s.variant = variant;
        if (!walk_query(s, copy, nparams)) return std::nullopt;
        outer = static_cast<int>(s.outer_joins.size());
        others = std::min(s.others, kMaxSplit);
        if (null_join >= outer) return std::nullopt;
        List* before = nullptr;
        if (null_join >= 0) {
            auto oj = s.outer_joins[null_join];
            if (oj.level == copy) before = pg::call([&] { return copy_node(copy->targetList); });
            pg::call([&] { null_extend(oj.level, oj.join, oj.nullable); });
            // At the branch's own level, only a key that reads the nullable side differs.
            if (before != nullptr) {
                bool same = true;
                for (size_t j = 0; j < a.key.size(); j++) {
                    TargetEntry* now = output_entry(copy, a.key[j].attno);
                    List* after = copy->targetList;
                    copy->targetList = before;
                    TargetEntry* was = output_entry(copy, a.key[j].attno);
                    copy->targetList = after;
                    if (!equal(was->expr, now->expr)) same = false;
                }
                if (same) return std::nullopt;
            }
        }
        List* tlist = NIL;
        for (size_t j = 0; j < a.key.size(); j++) {
            TargetEntry* te = output_entry(copy, a.key[j].attno);
            std::string name = fmt::format("k{}", j + 1);
            tlist = pg::call([&] {
                return lappend(tlist, makeTargetEntry(static_cast<Expr*>(copy_node(te->expr)),
                                                      static_cast<AttrNumber>(j + 1),
                                                      pstrdup(name.c_str()), false));
            });
        }
        copy->targetList = tlist;
        copy->groupClause = NIL;
        copy->groupingSets = NIL;
        copy->havingQual = nullptr;
        copy->hasAggs = false;
        copy->distinctClause = NIL;
        copy->sortClause = NIL;
        char* text = pg::call([&] { return pg_get_querydef(copy, false); });
        return std::string(text);
    };
    for (const auto& o : a.occurrences) {
        if (!changed[o.source]) continue;
        auto plain = term(o, -1, 0);
        if (!plain) continue;
        terms.push_back(*plain);
        const int joins = outer, split = others;
        for (int variant = 0; variant < (1 << split); variant++)
            for (int k = variant == 0 ? 0 : -1; k < joins; k++)
                if (auto t = term(o, k, variant)) terms.push_back(*t);
    }
    std::string cols, casts, aggs;
    for (size_t j = 0; j < a.key.size(); j++) {
        std::string k = fmt::format("k{}", j + 1);
        cols += (j ? ", " : "") + k;
        casts += fmt::format("{}u.{}::{} AS {}", j ? ", " : "", k, a.key[j].type_sql, k);
        aggs += fmt::format(
            ", pg_catalog.array_agg(d.{0}) FILTER (WHERE d.{0} IS NOT NULL), "
            "COALESCE(pg_catalog.bool_or(d.{0} IS NULL), false)",
            k);
    }
    std::string unioned;
    for (const auto& t : terms) unioned += (unioned.empty() ? "(" : " UNION ALL (") + t + ")";
    if (unioned.empty()) unioned = "SELECT " + std::string("NULL") + " WHERE false";
    return fmt::format(
        "SELECT pg_catalog.count(*)::pg_catalog.int8{} FROM (SELECT DISTINCT {} FROM ({}) "
        "u({})) d",
        aggs, casts, unioned, cols);
}

std::string recompute_sql(const IncAnalysis& a, const std::string& view_query) {
    return fmt::format("SELECT q.* FROM ({}) q WHERE {}", view_query, predicate(a, "q"));
}

std::string current_rows_sql(const IncAnalysis& a, const std::string& view_quoted) {
    return fmt::format("SELECT m.ctid, m.* FROM {} m WHERE {}", view_quoted, predicate(a, "m"));
}

}  // namespace mv::catalog
