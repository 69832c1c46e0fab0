// create and adopt: bring a materialized view under management, by building it from a query or
// by registering one that exists.
#include "ops/common.hpp"

#include "boundary/scopes.hpp"
#include "catalog/query_check.hpp"
#include "core/schedule.hpp"
#include "ops/remote.hpp"
#include "ops/swap.hpp"
#include "ops/incremental.hpp"
#include "ops/options.hpp"
#include "ops/pipeline.hpp"

namespace mv::ops {

namespace {

Json create_request(const CreateArgs& a) {
    // The effective options of a create call.
    Json r = Json::object();
    r.set("refresh_strategy", a.refresh_strategy);
    r.set("unique_index_columns",
          a.unique_index_columns ? Json::string_array(*a.unique_index_columns) : Json());
    r.set("force", a.force);
    r.set("with_data", a.with_data);
    r.set("row_count_strategy", a.row_count_strategy ? *a.row_count_strategy : std::string("none"));
    r.set("schedule", a.schedule ? Json(*a.schedule) : Json());
    r.set("source", a.source ? Json(redact_source(*a.source)) : Json());
    return r;
}

void create_body(Context& ctx, const CreateArgs& a) {
    // Validate everything, then drop (force), create, index and record the definition.
    QualifiedName q = require_name(ctx, a.name);
    RowCountStrategy rcs = parse_row_count_strategy(a.row_count_strategy, RowCountStrategy::none);
    check_strategy(a.refresh_strategy, "refresh_strategy");
    if (a.unique_index_columns) check_index_columns(*a.unique_index_columns);
    if (a.refresh_strategy == "concurrent" && !a.unique_index_columns)
        throw Error(sqlstate::invalid_parameter_value,
                    "refresh_strategy 'concurrent' needs unique_index_columns")
            .hint(
                "Pass unique_index_columns => ARRAY['id'] (columns that identify a row), so "
                "REFRESH ... CONCURRENTLY has the unique index it requires.");
    if (!a.sql)
        throw Error(sqlstate::null_value_not_allowed, "sql must not be null")
            .hint("Pass the view's query, e.g. 'SELECT ...'.");
    std::optional<Schedule> schedule;
    if (a.schedule) schedule = parse_schedule(*a.schedule);

    std::string schema = catalog::creation_schema(q);
    QualifiedName target{schema, q.name};
    ctx.view = pg::quote_qualified(schema, q.name);
    if (a.source) check_source(*a.source);  // before anything could record it
    ctx.strategy = a.refresh_strategy;

    std::string query = catalog::check_single_query(*a.sql);
    // What is there now decides whether anything happens; nothing changes without force, so
    // these reads need no lock. With force, the pipeline checks the rights and locks.
    auto existing = catalog::find_relation(target);
    auto kept = ctx.store.find_detached(schema, q.name);
    if (existing && existing->relkind != 'm')
        throw Error(sqlstate::duplicate_table,
                    fmt::format("{} already exists and is {}", ctx.view,
                                catalog::relkind_with_article(existing->relkind)))
            .hint(
                "Choose another name; matviews never drops a relation that is not a materialized "
                "view.");
    if ((existing || kept) && !a.force) {
        // Nothing to change, so no per-view lock is taken (it would be held until the caller's
        // transaction ends and make other sessions' operations on the view skip).
        bool managed = existing && ctx.store.find_by_relid(existing->oid);
        ctx.skip(existing
                     ? (managed ? "already exists" : "materialized view exists but is not managed")
                     : "definition exists; the view is missing");
        ctx.response.set("hint",
                         existing && !managed
                             ? "Use matviews.adopt() to manage it, or force => true to rebuild it."
                             : "Use force => true to drop and recreate it.");
        return;
    }
    if (existing) {
        // Only the owner replaces a view: the pipeline checks, locks and reads its definition.
        auto t = lock_resolved(ctx, *existing);
        if (!t) return;
        // The exclusive lock the DROP needs, taken with short attempts so that readers never
        // queue behind a create(force) waiting for a long reader. The DROP removes the view's
        // definition and cancels its queued runs (sql_drop event trigger).
        take_exclusive_locks(ctx, {t->rel->oid}, "create");
        ctx.execute(fmt::format("DROP MATERIALIZED VIEW {}", t->rel->quoted));
        ctx.definition_id.reset();
    } else {
        // Nothing exists under that name yet: the lock is the name's.
        if (!ctx.lock_view(pg::ViewLockKey::name(ctx.view))) return;
    }
    if (kept) {
        // A definition kept under that name: only its owner replaces it.
        require_definition_owner(*kept, ctx.view);
        ctx.rights_checked = true;
        if (!ctx.lock_view(pg::ViewLockKey::definition(kept->id))) return;
        ctx.store.remove(kept->id);
    }

    std::string local_query = a.source ? remote_query(ctx, *a.source, query) : query;
    std::string statement = fmt::format("CREATE MATERIALIZED VIEW {} AS\n{}\nWITH {}", ctx.view,
                                        local_query, a.with_data ? "DATA" : "NO DATA");
    catalog::check_create_statement(statement);
    ctx.execute_owner_code(statement, std::nullopt);
    catalog::RelationInfo rel = catalog::require_matview(target);
    ctx.rights_checked = true;  // the caller created it: it is the caller's
    ctx.owner = rel.owner_name;
    if (a.unique_index_columns)
        ctx.response.set("index", create_unique_index(ctx, rel, *a.unique_index_columns));

    catalog::Definition d;
    d.relid = rel.oid;
    d.schema = schema;
    d.name = q.name;
    d.sql = query;
    d.search_path = ctx.caller_search_path;
    d.refresh_strategy = a.refresh_strategy;
    d.unique_index_columns = a.unique_index_columns;
    d.owner = rel.owner_name;
    d.source = a.source;
    if (schedule) {
        d.schedule = schedule->to_string();
        ctx.response.set("schedule", *d.schedule);
        warn_if_no_worker(ctx);
    }
    ctx.definition_id = ctx.store.insert(d);
    if (d.refresh_strategy == "incremental") start_incremental(ctx, rel, *ctx.definition_id, d);
    ctx.response.set("definition_id", static_cast<long long>(*ctx.definition_id));
    ctx.response.set("populated", a.with_data);
    ctx.row_count_after = ctx.count_rows(rel, rcs);
    ctx.status = "created";
}

void adopt_body(Context& ctx, const AdoptArgs& a) {
    // Register an existing view from its stored query; nothing is rebuilt. The only way a
    // relation comes under management by its name: its owner asks for it.
    check_strategy(a.refresh_strategy, "refresh_strategy");
    ctx.strategy = a.refresh_strategy;
    auto t = resolve_view(ctx, a.name, std::nullopt);
    if (!t) return;
    const catalog::RelationInfo& rel = *t->rel;
    if (t->def) {
        ctx.skip("already managed");
        return;
    }
    Json options = a.options
                       ? validate_options(ctx.store, merge_options(Json::object(), *a.options))
                       : Json::object();
    if (a.unique_index_columns)
        ctx.response.set("index", create_unique_index(ctx, rel, *a.unique_index_columns));
    if (a.refresh_strategy == "concurrent" &&
        !catalog::has_concurrent_refresh_index(ctx.spi, rel.oid))
        throw Error(
            sqlstate::object_not_in_prerequisite_state,
            fmt::format("{} has no unique index usable by REFRESH ... CONCURRENTLY", rel.quoted))
            .hint(unique_index_hint(rel, a.unique_index_columns));

    catalog::Definition d;
    d.relid = rel.oid;
    d.schema = rel.schema;
    d.name = rel.name;
    d.sql = catalog::stored_query(ctx.spi, rel.oid);
    d.search_path = "";
    d.refresh_strategy = a.refresh_strategy;
    d.unique_index_columns = a.unique_index_columns;
    d.options = options;
    d.owner = rel.owner_name;
    ctx.definition_id = ctx.store.insert(d);
    if (d.refresh_strategy == "incremental") start_incremental(ctx, rel, *ctx.definition_id, d);
    ctx.response.set("definition_id", static_cast<long long>(*ctx.definition_id));
    ctx.response.set("definition_sql", d.sql);
    ctx.status = "created";
}

}  // namespace

Json create(const CreateArgs& args) {
    // create: one recorded operation.
    Operation op{"create", raw_name(args.name)};
    return run(op, create_request(args), [&](Context& ctx) { create_body(ctx, args); });
}

Json adopt(const AdoptArgs& args) {
    // adopt: the request lists the effective options.
    Operation op{"adopt", raw_name(args.name)};
    Json request = Json::object();
    request.set("refresh_strategy", args.refresh_strategy);
    request.set("unique_index_columns", args.unique_index_columns
                                            ? Json::string_array(*args.unique_index_columns)
                                            : Json());
    request.set("options", args.options ? *args.options : Json());
    return run(op, request, [&](Context& ctx) { adopt_body(ctx, args); });
}

}  // namespace mv::ops
