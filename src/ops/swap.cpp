// swap: zero-downtime rebuild and redefinition. The new relation is created empty under a
// temporary name and given the view's owner at once, before any index: CREATE INDEX, REFRESH and
// ANALYZE each run the relation owner's code (index expressions and predicates, the query) as
// the relation's owner in a security-restricted operation, so the owner must be the view's, never
// the caller, when they run. It is filled by REFRESH, and given the old relation's planner
// statistics as REFRESH keeps them (analyzed only when there are none to keep). Every dependent
// view and materialized view is built the same way, under a temporary name, on the new relation
// (its query with the relations it reads replaced by OID), and filled: all while readers keep
// using the old ones. Then the exclusive locks are taken with a short lock_timeout (retried with
// backoff and jitter, so a long-running reader never makes every other reader queue behind the
// swap), and only then is what the swap carries over read: privileges, owner, comments, so that
// a GRANT, REVOKE or ALTER made while it built is never undone; indexes or dependents that
// changed meanwhile fail the swap (40001) rather than lose the change. In the lock window, only
// catalog work: the old relations are dropped, the new ones renamed into place, and the
// definitions and queued runs moved to the new OIDs. Everything runs in the operation's
// subtransaction: a failure anywhere leaves the old view.
#include "ops/swap.hpp"

#include "boundary/capture.hpp"
#include "boundary/scopes.hpp"
#include "boundary/statistics.hpp"
#include "boundary/subxact.hpp"
#include "catalog/clone.hpp"
#include "catalog/query_check.hpp"
#include "module.hpp"
#include "ops/common.hpp"
#include "ops/remote.hpp"

namespace mv::ops {

namespace {

constexpr const char* kBuildMarker = "matviews: swap build of ";

std::string kind_of(char relkind) {
    // The keyword of a re-creatable relkind, for DDL.
    return relkind == 'm' ? "MATERIALIZED VIEW" : "VIEW";
}

bool does_not_fit(const ErrorInfo& e) {
    // An error about the shape of the new query (SQLSTATE class 42: a missing column, a type
    // mismatch, an unknown function), not about privileges, resources or a cancel.
    return e.sqlstate.rfind("42", 0) == 0 && e.sqlstate != sqlstate::insufficient_privilege;
}

void execute_all(Context& ctx, const std::vector<catalog::Statement>& statements) {
    // Runs each statement as the caller, or as the role it names (a grant made by a grantor
    // other than the owner is made again by that grantor), restricted as REFRESH is.
    for (const auto& s : statements) {
        if (s.as_role == InvalidOid) {
            ctx.execute(s.sql);
            continue;
        }
        pg::RoleScope role(s.as_role, true);
        ctx.execute(s.sql);
    }
}

void carry_privileges(Context& ctx, const catalog::RelationSpec& built,
                      const catalog::RelationSpec& locked, const std::string& kind,
                      const std::string& target, const std::set<std::string>& columns) {
    // The new relation was given the privileges read before the lock, so that the dependents'
    // owners could read it while they were built; under the lock, those read now replace them
    // if a GRANT, REVOKE or ALTER ... OWNER committed in between.
    if (catalog::same_privileges(built, locked)) return;
    execute_all(ctx, catalog::revoke_grants(built, target));
    execute_all(ctx, catalog::ownership_and_grants(locked, kind, target, columns));
}

void fill(Context& ctx, const std::string& target, const std::optional<std::string>& search_path) {
    // REFRESH MATERIALIZED VIEW: PostgreSQL runs the query as the relation's owner, in a
    // security-restricted operation, the same as a regular refresh of the view itself.
    ctx.execute_owner_code(fmt::format("REFRESH MATERIALIZED VIEW {}", target), search_path);
}

std::vector<std::string> index_fingerprint(const std::vector<catalog::IndexSpec>& indexes) {
    // What must not change between the build and the lock: each index's full definition.
    std::vector<std::string> out;
    for (const auto& idx : indexes)
        out.push_back(catalog::index_statement(idx, idx.name, "t") + "|" +
                      idx.comment.value_or("") + (idx.clustered ? "|c" : ""));
    return out;
}

std::string build_name(Context& ctx, const std::string& schema, const std::string& base,
                       const std::string& view, bool drop_leftover) {
    // The first free name of <base>_mvswap, <base>_mvswap2, ... <base>_mvswap9 in the schema. A
    // relation under such a name left by an earlier swap of this view (it carries the build
    // marker as its comment) is dropped and its name reused; anything else is never touched,
    // only passed over, so a role with CREATE on the schema cannot stop the view's swaps by
    // taking the name.
    for (int i = 1; i <= 9; i++) {
        std::string name = derived_name(base, i == 1 ? "mvswap" : fmt::format("mvswap{}", i));
        auto left = catalog::find_relation(QualifiedName{schema, name});
        if (!left) return name;
        if (!drop_leftover || left->relkind != 'm') continue;
        auto comment = catalog::relation_comment(ctx.spi, left->oid);
        if (comment == std::string(kBuildMarker) + view) {
            ctx.execute(fmt::format("DROP MATERIALIZED VIEW {} CASCADE", left->quoted));
            ctx.response.set("removed_leftover", left->quoted);
            return name;
        }
    }
    throw Error(sqlstate::duplicate_table,
                fmt::format("cannot swap {}: every temporary name for {} is taken", view,
                            pg::quote_qualified(schema, derived_name(base, "mvswap"))))
        .hint(fmt::format("Drop or rename the relations {}.{}_mvswap, _mvswap2 ... _mvswap9.",
                          pg::quote_ident(schema), base));
}

void check_dependents(const catalog::RelationInfo& rel,
                      const std::vector<catalog::DependentSpec>& deps) {
    // Only views and materialized views can be re-created, and only by a role that may drop them
    // and give them back to their owner; checked before anything is built.
    for (const auto& d : deps) {
        if (d.rel.relkind != 'v' && d.rel.relkind != 'm')
            throw Error(sqlstate::dependent_objects_still_exist,
                        fmt::format("cannot swap {}: {} {} depends on it through a rule",
                                    rel.quoted, catalog::relkind_name(d.rel.relkind), d.rel.quoted))
                .hint(
                    "Drop that rule first; swap re-creates only dependent views and "
                    "materialized views.");
        if (!pg::has_privs_of(d.spec.owner))
            throw Error(sqlstate::insufficient_privilege,
                        fmt::format("cannot swap {}: dependent {} {} is owned by {}", rel.quoted,
                                    catalog::relkind_name(d.rel.relkind), d.rel.quoted,
                                    pg::quote_ident(d.spec.owner)))
                .detail(
                    "A swap drops and re-creates every view and materialized view that depends "
                    "on the view, which takes the privileges of their owners.")
                .hint(fmt::format("Run the swap as a superuser or as a member of {}.",
                                  pg::quote_ident(d.spec.owner)));
    }
}

long backoff_ms(int attempt) {
    // 20 ms after the first attempt, doubling per attempt up to 2 s, times a jitter factor in
    // [0.5, 1).
    double base = std::min(2000.0, 20.0 * std::pow(2.0, std::min(attempt - 1, 10)));
    return static_cast<long>(base * (0.5 + 0.5 * pg::random_fraction()));
}

Error dependent_does_not_fit(const ErrorInfo& e, const catalog::DependentSpec& d,
                             const std::string& view) {
    // A dependent that cannot be re-created: the caller may not (42501), or its definition no
    // longer fits the new one (2BP01).
    ErrorInfo info = e;
    bool denied = info.sqlstate == sqlstate::insufficient_privilege;
    std::string target = d.rel.quoted;
    info.detail = fmt::format("{} {} depends on {} and cannot be re-created{}: {}",
                              catalog::relkind_name(d.rel.relkind), target, view,
                              denied ? "" : " on the new definition", info.message);
    info.message = denied
                       ? fmt::format("cannot swap {}: cannot re-create dependent {}", view, target)
                       : fmt::format("cannot swap {}: dependent {} no longer fits", view, target);
    info.hint = denied ? fmt::format(
                             "Run the swap as a role that may create {} and set its owner (a "
                             "superuser, or a member of its owner).",
                             target)
                       : fmt::format(
                             "Drop or change {} first (matviews.delete(..., cascade => true) "
                             "drops dependents), or keep the columns it uses.",
                             target);
    if (!denied) info.sqlstate = sqlstate::dependent_objects_still_exist;
    return Error(info);
}

pg::CopiedStatistics keep_statistics_of(
    const std::string& schema, Oid from, Oid to, const std::vector<catalog::IndexSpec>& indexes,
    const std::vector<std::pair<std::string, std::string>>& index_renames) {
    // The relation's planner statistics, and those of its expression indexes (pg_statistic rows
    // of the index), from the old relation to the new one, as REFRESH keeps both. index_renames
    // holds the new index of each of `indexes`, in the same order; the old ones are held, with
    // their relation, since they were read.
    pg::CopiedStatistics stats = pg::copy_statistics(from, to);
    for (size_t i = 0; i < indexes.size() && i < index_renames.size(); i++) {
        auto made = catalog::find_relation(QualifiedName{schema, index_renames[i].first});
        if (made) pg::copy_statistics(indexes[i].oid, made->oid);
    }
    return stats;
}

// A dependent's new relation, built before the lock on the new view (and on the new relations
// of the dependents it reads), under a temporary name.
struct BuiltDependent {
    std::string tmp;         // its temporary name, unqualified
    std::string tmp_quoted;  // and qualified
    Oid oid = InvalidOid;
    std::set<std::string> columns;
    catalog::RelationSpec spec;        // what it was given, read before the lock
    std::vector<std::string> indexes;  // index_fingerprint of the old dependent at build time
    std::vector<std::pair<std::string, std::string>> renames;  // temporary index name -> its own
};

BuiltDependent build_dependent(Context& ctx, const catalog::DependentSpec& d,
                               const std::string& definition,
                               const std::vector<catalog::IndexSpec>& indexes,
                               const std::vector<std::string>& column_names, bool prebuilt,
                               bool keep_statistics, const std::string& view) {
    // CREATE VIEW / MATERIALIZED VIEW (empty) from the dependent's own query with the relations
    // it reads replaced by their new ones, its owner at once (CREATE INDEX then runs index
    // expressions as that owner), indexes, column settings, then REFRESH as the owner of a
    // materialized view that was populated, and its planner statistics: all of it while readers
    // keep using the old dependent.
    BuiltDependent b;
    std::string kind = kind_of(d.rel.relkind);
    b.tmp = build_name(ctx, d.schema, d.name, d.rel.quoted, true);
    b.tmp_quoted = pg::quote_qualified(d.schema, b.tmp);
    // The dependent's own column names, which a RENAME COLUMN changed in pg_attribute and not in
    // its query (a set operation would otherwise print its first branch's).
    std::string names;
    for (const auto& n : column_names) names += (names.empty() ? " (" : ", ") + pg::quote_ident(n);
    if (!names.empty()) names += ")";
    try {
        if (d.rel.relkind == 'm')
            ctx.execute(fmt::format(
                "CREATE MATERIALIZED VIEW {}{}{}{}{} AS\n{}\nWITH NO DATA", b.tmp_quoted, names,
                d.spec.access_method.empty() ? ""
                                             : " USING " + pg::quote_ident(d.spec.access_method),
                catalog::with_clause(d.spec.reloptions),
                d.spec.tablespace.empty() ? ""
                                          : " TABLESPACE " + pg::quote_ident(d.spec.tablespace),
                definition));
        else
            ctx.execute(fmt::format("CREATE VIEW {}{}{} AS\n{}", b.tmp_quoted, names,
                                    catalog::with_clause(d.spec.reloptions), definition));
    } catch (const Error& e) {
        ErrorInfo info = e.info();
        if (info.sqlstate != sqlstate::insufficient_privilege && !does_not_fit(info)) throw;
        throw dependent_does_not_fit(info, d, view);
    }
    b.oid = catalog::find_relation(QualifiedName{d.schema, b.tmp})->oid;
    if (prebuilt && !pg::columns_unchanged(d.rel.oid, b.oid))
        throw Error(sqlstate::dependent_objects_still_exist,
                    fmt::format("cannot swap {}: dependent {} would not keep its columns", view,
                                d.rel.quoted))
            .detail("Its query on the new relations gives other column types.")
            .hint("Drop or change the dependent first.");
    if (d.rel.relkind == 'm')
        ctx.execute(fmt::format("COMMENT ON MATERIALIZED VIEW {} IS {}", b.tmp_quoted,
                                pg::quote_literal(std::string(kBuildMarker) + d.rel.quoted)));
    b.columns = catalog::column_names(ctx.spi, b.oid);
    // Owner first (CREATE INDEX then runs index expressions as that owner), and the privileges,
    // which the owners of the dependents built after it need to read it.
    execute_all(ctx, catalog::ownership_and_grants(d.spec, kind, b.tmp_quoted, b.columns));
    b.spec = d.spec;
    b.indexes = index_fingerprint(indexes);
    for (const auto& idx : indexes) {
        std::string tmp_index = build_name(ctx, d.schema, idx.name, d.rel.quoted, false);
        try {
            ctx.execute(catalog::index_statement(idx, tmp_index, b.tmp_quoted));
        } catch (const Error& e) {
            if (!does_not_fit(e.info())) throw;
            throw dependent_does_not_fit(e.info(), d, view);
        }
        if (idx.comment)
            ctx.execute(fmt::format("COMMENT ON INDEX {} IS {}",
                                    pg::quote_qualified(d.schema, tmp_index),
                                    pg::quote_literal(*idx.comment)));
        if (idx.clustered)
            ctx.execute(fmt::format("ALTER MATERIALIZED VIEW {} CLUSTER ON {}", b.tmp_quoted,
                                    pg::quote_ident(tmp_index)));
        b.renames.emplace_back(tmp_index, idx.name);
    }
    for (const auto& s : catalog::column_settings(d.spec, kind, b.tmp_quoted, b.columns))
        ctx.execute(s);
    if (d.rel.relkind == 'm' && d.populated) {
        fill(ctx, b.tmp_quoted, std::nullopt);
        if (keep_statistics) keep_statistics_of(d.schema, d.rel.oid, b.oid, indexes, b.renames);
    }
    return b;
}

void finish_dependent(Context& ctx, const catalog::DependentSpec& d, const BuiltDependent& b) {
    // Under the lock, once the old dependent is dropped: its name, then what was read under the
    // lock (owner, privileges, comments), index names, triggers and rules.
    std::string kind = kind_of(d.rel.relkind);
    ctx.execute(
        fmt::format("ALTER {} {} RENAME TO {}", kind, b.tmp_quoted, pg::quote_ident(d.name)));
    carry_privileges(ctx, b.spec, d.spec, kind, d.rel.quoted, b.columns);
    for (const auto& s : catalog::comments(d.spec, kind, d.rel.quoted, b.columns)) ctx.execute(s);
    for (const auto& [from, to] : b.renames)
        ctx.execute(fmt::format("ALTER INDEX {} RENAME TO {}", pg::quote_qualified(d.schema, from),
                                pg::quote_ident(to)));
    for (const auto& t : d.trigger_definitions) ctx.execute(t);
    for (const auto& r : d.rule_definitions) ctx.execute(r);
}

}  // namespace

void take_exclusive_locks(Context& ctx, const std::vector<Oid>& relations, const char* purpose) {
    // AccessExclusiveLock on each relation, in the given order, so that readers never queue
    // behind the attempt: each attempt first waits, outside the lock queue, for the transactions
    // that now hold conflicting locks (a long-running reader; autovacuum is cancelled), for at
    // most the backoff of that attempt, then takes every lock only if it is free at once. Only
    // when the locks are found taken again several times in a row (readers back to back) does
    // an attempt queue, for at most matviews.swap_lock_timeout. With matviews.swap_lock_timeout
    // = 0 an attempt never waits for anything: it takes the locks if they are free at once and
    // otherwise sleeps the backoff. Each attempt runs in its own subtransaction, so a failed one
    // leaves nothing held or queued; after matviews.swap_lock_attempts it gives up with 55P03.
    constexpr int kFreeAttempts = 3;  // attempts that found the locks busy before one queues
    const int attempts = settings.swap_lock_attempts;
    const int timeout = settings.swap_lock_timeout_ms;
    auto started = std::chrono::steady_clock::now();
    int busy = 0;
    for (int attempt = 1;; attempt++) {
        bool queue = timeout > 0 && busy >= kFreeAttempts;
        bool wait_for_holders = timeout > 0 && !queue;
        auto failure = pg::in_subtransaction([&] {
            pg::GucScope guc;
            if (timeout > 0)
                guc.set("lock_timeout", std::to_string(queue ? timeout : backoff_ms(attempt)));
            if (wait_for_holders)
                for (Oid relid : relations)
                    if (!pg::wait_for_lockers(relid, backoff_ms(attempt)))
                        throw Error(sqlstate::lock_not_available,
                                    "canceling statement due to lock timeout");
            for (Oid relid : relations) pg::lock_relation_exclusive(relid, !queue);
        });
        // Recorded in the response whether the swap goes on or gives up.
        ctx.response.set("lock_attempts", attempt);
        ctx.response.set("lock_wait_ms", std::chrono::duration<double, std::milli>(
                                             std::chrono::steady_clock::now() - started)
                                             .count());
        if (!failure) {
            if (queue) ctx.response.set("lock_queued", true);
            return;
        }
        if (failure->sqlstate != sqlstate::lock_not_available) throw Error(*failure);
        busy = failure->message == pg::kRelationBusy ? busy + 1 : 0;
        if (attempt >= attempts)
            throw Error(sqlstate::lock_not_available,
                        fmt::format("could not lock {} for the {} after {} attempts", ctx.view,
                                    purpose, attempts))
                .detail(
                    "Another session held the view (for example a long-running query) every time "
                    "the swap tried; the old view is untouched.")
                .hint(
                    "Retry later, find the long-running session in pg_stat_activity, or raise "
                    "matviews.swap_lock_attempts.");
        if (timeout == 0)
            pg::sleep_ms(backoff_ms(attempt));
        else if (busy > 0)
            pg::sleep_ms(1 + static_cast<long>(4 * pg::random_fraction()));  // desynchronize
    }
}

Oid swap_into(Context& ctx, const catalog::RelationInfo& rel,
              const std::optional<catalog::Definition>& def,
              const std::optional<std::string>& new_sql) {
    // Build beside, lock briefly, read what carries over, swap, re-create dependents, move the
    // definition and queued runs, update the definition.
    catalog::require_owner(rel);
    std::string query;
    std::optional<std::string> build_query;  // when the relation is built from other text
    // The search_path the query is read and filled under; none means the caller's.
    std::optional<std::string> search_path;
    std::string stored_search_path;
    if (new_sql) {
        query = catalog::check_single_query(*new_sql);
        // A remote view is rebuilt over dblink from the new remote query.
        if (def && def->source) build_query = remote_query(ctx, *def->source, query);
        stored_search_path = ctx.caller_search_path;
    } else {
        // The stored query deparsed with every name qualified, run under the search_path the
        // view was defined with: the same data as REFRESH, whatever the caller's search_path.
        // A view defined without one (not managed, or adopted) keeps the caller's, as REFRESH
        // does, so that functions it calls still find what they name.
        query = catalog::stored_query(ctx.spi, rel.oid);
        search_path = owner_search_path(def);
    }
    std::string tmp = build_name(ctx, rel.schema, rel.name, rel.quoted, true);
    std::string tmp_quoted = pg::quote_qualified(rel.schema, tmp);

    // Read before the lock only to build: the storage settings and indexes the new relation is
    // built with, and the dependents, to refuse early a swap that could never re-create them.
    catalog::RelationSpec build_spec = catalog::relation_spec(ctx.spi, rel.oid);
    std::vector<catalog::IndexSpec> indexes = catalog::index_specs(ctx.spi, rel.oid);
    std::vector<catalog::DependentSpec> deps = catalog::dependent_specs(ctx.spi, rel.oid);
    check_dependents(rel, deps);  // before anything is built

    // 1. Build, readers untouched: created empty and marked as a swap build until it is renamed,
    // given the view's owner, indexed as that owner (so an index that no longer fits fails
    // before any data is computed), filled by REFRESH as the owner, and given statistics.
    std::string create = fmt::format(
        "CREATE MATERIALIZED VIEW {}{}{}{} AS\n{}\nWITH NO DATA", tmp_quoted,
        build_spec.access_method.empty() ? ""
                                         : " USING " + pg::quote_ident(build_spec.access_method),
        catalog::with_clause(build_spec.reloptions),
        build_spec.tablespace.empty() ? ""
                                      : " TABLESPACE " + pg::quote_ident(build_spec.tablespace),
        build_query ? *build_query : query);
    catalog::check_create_statement(create);
    // The stored query was printed under the pinned search_path, which qualifies every name it
    // needs to; it is read back under that same path, so no name resolves to anything else (a
    // planted overload in the definition's or the caller's path). Its fill below runs under the
    // definition's path, for what the functions it calls name.
    ctx.execute_owner_code(create, new_sql ? search_path : std::string(pg::kPinnedSearchPath));
    Oid tmp_oid = catalog::find_relation(QualifiedName{rel.schema, tmp})->oid;
    ctx.execute(fmt::format("COMMENT ON MATERIALIZED VIEW {} IS {}", tmp_quoted,
                            pg::quote_literal(std::string(kBuildMarker) + rel.quoted)));
    std::set<std::string> columns = catalog::column_names(ctx.spi, tmp_oid);
    // Owner first (CREATE INDEX then runs index expressions as that owner), and the privileges,
    // which the dependents' owners need to build theirs on it.
    execute_all(
        ctx, catalog::ownership_and_grants(build_spec, "MATERIALIZED VIEW", tmp_quoted, columns));
    std::vector<std::pair<std::string, std::string>> renames;  // temporary index name -> original
    for (const auto& idx : indexes) {
        std::string tmp_index = build_name(ctx, rel.schema, idx.name, rel.quoted, false);
        try {
            ctx.execute(catalog::index_statement(idx, tmp_index, tmp_quoted));
        } catch (const Error& e) {
            ErrorInfo info = e.info();
            if (!does_not_fit(info)) throw;
            info.detail = fmt::format("Index {} of {} cannot be built on the new definition: {}",
                                      pg::quote_ident(idx.name), rel.quoted, info.message);
            info.message = fmt::format("cannot swap {}: index {} no longer fits", rel.quoted,
                                       pg::quote_ident(idx.name));
            info.hint = "Drop the index first, or keep the columns and expressions it uses.";
            info.sqlstate = sqlstate::dependent_objects_still_exist;
            throw Error(info);
        }
        if (idx.comment)
            ctx.execute(fmt::format("COMMENT ON INDEX {} IS {}",
                                    pg::quote_qualified(rel.schema, tmp_index),
                                    pg::quote_literal(*idx.comment)));
        if (idx.clustered)
            ctx.execute(fmt::format("ALTER MATERIALIZED VIEW {} CLUSTER ON {}", tmp_quoted,
                                    pg::quote_ident(tmp_index)));
        renames.emplace_back(tmp_index, idx.name);
    }
    for (const auto& s :
         catalog::column_settings(build_spec, "MATERIALIZED VIEW", tmp_quoted, columns))
        ctx.execute(s);
    fill(ctx, tmp_quoted, search_path);
    // Planner statistics: a rebuild keeps the old relation's, column by column, as a plain
    // REFRESH keeps them (pg::copy_statistics); a redefinition, or a view never analyzed, is
    // analyzed instead (as the owner: ANALYZE switches to the relation's owner itself).
    pg::CopiedStatistics stats;
    if (!new_sql) stats = keep_statistics_of(rel.schema, rel.oid, tmp_oid, indexes, renames);
    if (stats.copied == 0) {
        ctx.execute(fmt::format("ANALYZE {}", tmp_quoted));
        ctx.response.set("statistics", "analyzed");
    } else {
        ctx.response.set("statistics", "copied");
    }
    // Then each dependent's new relation, in dependency order, on the new view and on the new
    // relations of the dependents before it: a materialized view's query runs now, not in the
    // lock window. Its query reads the new relations by OID, so only when the new view keeps
    // every column of the old one in place (always, unless a redefinition drops, moves or
    // retypes one); otherwise the dependents are re-created from their text, by name, once the
    // old view is gone, inside the lock window.
    // The same holds when a dependent names a replaced relation outside its FROM clauses (a
    // regclass constant, its row type or array type, one of its indexes): only its text,
    // re-parsed once the old relation is gone, follows the name.
    bool prebuild = deps.empty() || pg::columns_unchanged(rel.oid, tmp_oid);
    if (prebuild && !deps.empty()) {
        std::vector<Oid> dep_oids, replaced_oids{rel.oid};
        for (const auto& d : deps) dep_oids.push_back(d.rel.oid);
        replaced_oids.insert(replaced_oids.end(), dep_oids.begin(), dep_oids.end());
        prebuild = !catalog::named_beyond_relations(ctx.spi, dep_oids, replaced_oids);
    }
    std::vector<BuiltDependent> built;
    if (prebuild) {
        std::vector<std::pair<Oid, Oid>> replacements{{rel.oid, tmp_oid}};
        for (const auto& d : deps) {
            std::vector<catalog::IndexSpec> dep_index_specs =
                catalog::index_specs(ctx.spi, d.rel.oid);
            built.push_back(build_dependent(
                ctx, d, catalog::mapped_definition(d.rel.oid, replacements), dep_index_specs,
                pg::attribute_names(d.rel.oid), true, !new_sql, rel.quoted));
            replacements.emplace_back(d.rel.oid, built.back().oid);
        }
    }
    if (!deps.empty())
        ctx.response.set("dependents_built", prebuild ? "before the lock" : "in the lock window");

    // 2. The lock window: as short as the catalog work it needs. Dependents are locked first,
    // outermost first, the order in which a reader's query locks them.
    std::vector<Oid> lock_order;
    for (auto it = deps.rbegin(); it != deps.rend(); ++it) lock_order.push_back(it->rel.oid);
    lock_order.push_back(rel.oid);
    take_exclusive_locks(ctx, lock_order, "swap");

    // 3. Under the lock, what carries over, read now: nothing granted, revoked, commented or
    // given away while the build ran is undone. Dependents created meanwhile were locked above
    // only if they existed then: read again, and refuse if the set changed.
    catalog::RelationSpec spec = catalog::relation_spec(ctx.spi, rel.oid);
    std::vector<catalog::DependentSpec> locked_deps = catalog::dependent_specs(ctx.spi, rel.oid);
    auto oids = [](const std::vector<catalog::DependentSpec>& v) {
        std::vector<Oid> out;
        for (const auto& d : v) out.push_back(d.rel.oid);
        return out;
    };
    bool changed =
        oids(locked_deps) != oids(deps) ||
        index_fingerprint(catalog::index_specs(ctx.spi, rel.oid)) != index_fingerprint(indexes);
    changed = changed || !catalog::same_settings(build_spec, spec);
    // A dependent materialized view was filled, as its owner, through the privileges the new
    // relations were given before the lock: if any of them was taken away since (a REVOKE takes
    // no lock on the view), that fill may have read what its owner may no longer read. A grant
    // added since takes nothing away: the new relations just get it.
    bool filled = false;
    bool privileges_changed = catalog::privileges_taken_away(build_spec, spec);
    for (size_t i = 0; !changed && i < built.size(); i++) {
        changed =
            locked_deps[i].definition != deps[i].definition ||
            locked_deps[i].populated != deps[i].populated ||
            !catalog::same_settings(locked_deps[i].spec, built[i].spec) ||
            index_fingerprint(catalog::index_specs(ctx.spi, deps[i].rel.oid)) != built[i].indexes;
        filled = filled || (deps[i].rel.relkind == 'm' && deps[i].populated);
        privileges_changed = privileges_changed ||
                             catalog::privileges_taken_away(built[i].spec, locked_deps[i].spec);
    }
    if (!changed && filled && privileges_changed)
        throw Error(sqlstate::serialization_failure,
                    fmt::format("cannot swap {}: privileges on it or on its dependents changed "
                                "while the swap was building",
                                rel.quoted))
            .detail(
                "Its dependent materialized views were filled through the privileges read "
                "before the change; the old view is untouched, with the change that was made.")
            .hint("Run the swap again.");
    if (changed)
        throw Error(sqlstate::serialization_failure,
                    fmt::format("cannot swap {}: its indexes or dependents changed while the swap "
                                "was building",
                                rel.quoted))
            .detail("The old view is untouched, with the change that was made to it.")
            .hint("Run the swap again.");
    check_dependents(rel, locked_deps);
    deps = std::move(locked_deps);
    // Re-created in the lock window: what they need of the old dependents, read before the drops.
    std::vector<std::vector<catalog::IndexSpec>> dep_indexes;
    std::vector<std::vector<std::string>> dep_columns;
    if (!prebuild)
        for (const auto& d : deps) {
            dep_indexes.push_back(catalog::index_specs(ctx.spi, d.rel.oid));
            dep_columns.push_back(pg::attribute_names(d.rel.oid));
        }
    carry_privileges(ctx, build_spec, spec, "MATERIALIZED VIEW", tmp_quoted, columns);
    for (const auto& s : catalog::column_comments(spec, tmp_quoted, columns)) ctx.execute(s);

    {
        // The DROPs below must not remove the definitions of the relations being replaced: they
        // move to the new relations (sql_drop event trigger, Store::rebind).
        std::vector<Oid> replaced{rel.oid};
        for (const auto& d : deps) replaced.push_back(d.rel.oid);
        catalog::ReplacingRelations replacing(replaced);
        for (auto it = deps.rbegin(); it != deps.rend(); ++it)
            ctx.execute(fmt::format("DROP {} {}", kind_of(it->rel.relkind), it->rel.quoted));
        ctx.execute(fmt::format("DROP MATERIALIZED VIEW {}", rel.quoted));
        ctx.execute(fmt::format("ALTER MATERIALIZED VIEW {} RENAME TO {}", tmp_quoted,
                                pg::quote_ident(rel.name)));
        ctx.execute(catalog::relation_comment(spec, "MATERIALIZED VIEW", rel.quoted));
        for (const auto& [from, to] : renames)
            ctx.execute(fmt::format("ALTER INDEX {} RENAME TO {}",
                                    pg::quote_qualified(rel.schema, from), pg::quote_ident(to)));
        ctx.store.rebind(rel.oid, tmp_oid);
        // Views watching these relations learn of their new contents when this commits.
        pg::note_change(tmp_oid);
        for (size_t i = 0; i < deps.size(); i++) {
            if (!prebuild)
                built.push_back(build_dependent(ctx, deps[i], deps[i].definition, dep_indexes[i],
                                                dep_columns[i], false, false, rel.quoted));
            finish_dependent(ctx, deps[i], built[i]);
            ctx.store.rebind(deps[i].rel.oid, built[i].oid);
            pg::note_change(built[i].oid);
        }
    }

    Json recreated = Json::array();
    for (const auto& d : deps) recreated.push(d.rel.quoted);
    ctx.response.set("dependents_recreated", std::move(recreated));
    ctx.response.set("indexes", static_cast<long long>(indexes.size()));
    if (new_sql && def) {
        catalog::Definition next = *def;
        next.sql = query;
        next.search_path = stored_search_path;
        ctx.store.update(next);
        ctx.response.set("definition_updated", true);
    }
    return tmp_oid;
}

}  // namespace mv::ops
