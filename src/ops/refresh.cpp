// refresh: REFRESH MATERIALIZED VIEW with the chosen strategy, the per-view lock that never
// waits, the CONCURRENTLY prerequisites checked from the catalog, per-view timeouts, and cascade
// to dependent materialized views in dependency order.
#include "ops/common.hpp"

#include "boundary/scopes.hpp"
#include "ops/incremental.hpp"
#include "ops/options.hpp"
#include "ops/pipeline.hpp"
#include "ops/swap.hpp"

namespace mv::ops {

namespace {

bool skip_fresh_watch_run(Context& ctx, const std::string& trigger,
                          const std::optional<catalog::Definition>& def) {
    // A watch run finds its view fresh when another refresh (scheduled, manual) already took in
    // every change since it was queued, or the watch ended.
    if (trigger != "watch" || (def && def->stale)) return false;
    ctx.skip(def && def->watch_min_interval ? "not stale" : "not watched");
    return true;
}

void collect_cascade(Context& ctx, Oid relid, std::vector<catalog::Dependent>* cascade) {
    // The materialized views that depend on relid, in dependency order.
    for (auto& d : catalog::dependents(ctx.spi, relid))
        if (d.relkind == 'm') cascade->push_back(std::move(d));
}

void refresh_body(Context& ctx, const RefreshArgs& a, std::vector<catalog::Dependent>* cascade) {
    // The pipeline, then choose the strategy, count, refresh, count.
    RowCountStrategy rcs =
        parse_row_count_strategy(a.row_count_strategy, RowCountStrategy::estimated);
    if (a.strategy) check_strategy(*a.strategy, "strategy");
    auto target = resolve_view(ctx, a.name, a.relid);
    if (!target) return;
    const catalog::RelationInfo& rel = *target->rel;
    const auto& def = target->def;
    if (skip_fresh_watch_run(ctx, a.trigger, def)) return;
    std::string strategy =
        a.strategy ? *a.strategy : (def ? def->refresh_strategy : std::string("regular"));
    ctx.request.set("strategy", strategy);
    ctx.strategy = strategy;

    ctx.row_count_before = ctx.count_rows(rel, rcs);
    ViewTimeouts timeouts(def ? def->options : Json::object());
    if (strategy == "swap") {
        Oid new_oid = swap_into(ctx, rel, def, std::nullopt);
        ctx.response.set("strategy", strategy);
        ctx.row_count_after = ctx.count_rows(*catalog::relation_by_oid(new_oid), rcs);
        // The swap re-created and repopulated the dependents on the new relation; cascade then
        // refreshes them as it does after any refresh, each as its own run (docs/api.md).
        if (cascade) collect_cascade(ctx, new_oid, cascade);
        return;
    }
    if (strategy == "incremental") {
        if (!def)
            throw Error(
                sqlstate::feature_not_supported,
                fmt::format("cannot refresh {} incrementally: it is not managed by matviews",
                            rel.quoted))
                .detail(
                    "An incremental refresh reads the changes matviews captured since the "
                    "previous one, for a managed view whose strategy is incremental.")
                .hint(fmt::format("Run matviews.adopt({}, refresh_strategy => 'incremental').",
                                  pg::quote_literal(rel.quoted)));
        incremental_refresh(ctx, rel, *def);
        ctx.row_count_after = ctx.count_rows(rel, rcs);
        if (cascade) collect_cascade(ctx, rel.oid, cascade);
        return;
    }
    bool concurrently = strategy == "concurrent";
    if (concurrently && !rel.populated) {
        concurrently = false;
        ctx.strategy = "regular";
        ctx.response.set("fallback", "regular");
        ctx.response.set("notice",
                         "the materialized view was not populated, so it was refreshed without "
                         "CONCURRENTLY (which needs a populated view)");
    }
    if (concurrently && !catalog::has_concurrent_refresh_index(ctx.spi, rel.oid))
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    fmt::format("cannot refresh {} concurrently: it has no usable unique index",
                                rel.quoted))
            .detail(
                "REFRESH ... CONCURRENTLY needs a unique index that is valid, immediate, not "
                "partial, and on plain columns only.")
            .hint(unique_index_hint(rel, def ? def->unique_index_columns : std::nullopt));
    // REFRESH runs the query as the view's owner in a security-restricted operation; under the
    // search_path the view was defined with, else the caller's, as a plain REFRESH would.
    ctx.execute_owner_code(fmt::format("REFRESH MATERIALIZED VIEW {}{}",
                                       concurrently ? "CONCURRENTLY " : "", rel.quoted),
                           owner_search_path(def));
    ctx.response.set("strategy", *ctx.strategy);
    ctx.row_count_after = ctx.count_rows(rel, rcs);
    if (cascade) collect_cascade(ctx, rel.oid, cascade);
}

void swap_body(Context& ctx, const SwapArgs& a) {
    // The pipeline, then count, swap (rebuild or redefine), count.
    RowCountStrategy rcs =
        parse_row_count_strategy(a.row_count_strategy, RowCountStrategy::estimated);
    ctx.strategy = "swap";
    auto target = resolve_view(ctx, a.name, a.relid);
    if (!target) return;
    if (skip_fresh_watch_run(ctx, a.trigger, target->def)) return;
    const catalog::RelationInfo& rel = *target->rel;
    ctx.row_count_before = ctx.count_rows(rel, rcs);
    ViewTimeouts timeouts(target->def ? target->def->options : Json::object());
    Oid new_oid = swap_into(ctx, rel, target->def, a.sql);
    ctx.row_count_after = ctx.count_rows(*catalog::relation_by_oid(new_oid), rcs);
}

}  // namespace

Json swap(const SwapArgs& args) {
    // swap: one recorded operation.
    Operation op{"swap", raw_name(args.name), args.trigger, args.queued_run_id, true};
    Json request = Json::object();
    request.set("sql", args.sql ? Json(*args.sql) : Json());
    request.set("row_count_strategy",
                args.row_count_strategy ? *args.row_count_strategy : std::string("estimated"));
    return run(op, request, [&](Context& ctx) { swap_body(ctx, args); });
}

Json refresh(const RefreshArgs& args) {
    // The view itself, then (cascade) each dependent materialized view as its own run.
    Operation op{"refresh", raw_name(args.name), args.trigger, args.queued_run_id, true};
    Json request = Json::object();
    request.set("strategy", args.strategy ? Json(*args.strategy) : Json());
    request.set("row_count_strategy",
                args.row_count_strategy ? *args.row_count_strategy : std::string("estimated"));
    request.set("cascade", args.cascade);
    std::vector<catalog::Dependent> dependents;
    Json out = run(op, request, [&](Context& ctx) {
        refresh_body(ctx, args, args.cascade ? &dependents : nullptr);
    });
    if (!args.cascade) return out;

    Json cascaded = Json::array();
    if (out.find("status")->as_string() == "updated") {
        for (const auto& d : dependents) {
            RefreshArgs dep;
            dep.name = d.quoted;
            dep.relid = d.oid;  // by OID: the cascade never resolves a name again
            dep.row_count_strategy = args.row_count_strategy;
            dep.trigger = "cascade";
            Json r = refresh(dep);
            Json item = Json::object();
            item.set("view", d.quoted);
            item.set("status", *r.find("status"));
            item.set("run_id", *r.find("run_id"));
            if (const Json* e = r.find("error")) item.set("error", *e);
            cascaded.push(std::move(item));
        }
    }
    // The root run's record lists the cascade too, as its response does.
    if (const Json* id = out.find("run_id")) {
        pg::Spi spi;
        catalog::Store(spi).annotate_run(id->as_int(), "cascade", cascaded);
    }
    out.find("response")->set("cascade", std::move(cascaded));
    return out;
}

}  // namespace mv::ops
