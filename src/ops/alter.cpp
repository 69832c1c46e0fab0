// alter: changes a definition's settings (strategy, unique index columns, options, enabled),
// keeping the managed unique index in step with unique_index_columns.
#include "ops/common.hpp"

#include "boundary/scopes.hpp"
#include "ops/incremental.hpp"
#include "ops/options.hpp"
#include "ops/pipeline.hpp"

namespace mv::ops {

namespace {

Json columns_json(const OptTextList& c) {
    return c ? Json::string_array(*c) : Json();
}

void note_change(Json& changes, const char* field, Json before, Json after) {
    // Records {field: {before, after}} when the value changes.
    if (before == after) return;
    Json c = Json::object();
    c.set("before", std::move(before));
    c.set("after", std::move(after));
    changes.set(field, std::move(c));
}

void alter_body(Context& ctx, const AlterArgs& a) {
    // The pipeline (a missing view may leave a kept definition), then each given setting.
    auto t = resolve_view(ctx, a.name, std::nullopt, Resolve{true, true});
    if (!t) return;
    const auto& rel = t->rel;
    const auto& def = t->def;
    if (!def)
        throw Error(sqlstate::undefined_object,
                    fmt::format("{} is not managed by matviews", ctx.view))
            .hint(rel ? fmt::format("Use matviews.adopt({}) to manage it first.",
                                    pg::quote_literal(ctx.view))
                      : std::string("Create it with matviews.create()."));

    catalog::Definition next = *def;
    Json changes = Json::object();
    if (a.refresh_strategy)
        next.refresh_strategy = check_strategy(*a.refresh_strategy, "refresh_strategy");
    if (a.options)
        next.options = validate_options(ctx.store, merge_options(def->options, *a.options));
    if (a.enabled) next.enabled = *a.enabled;
    if (a.unique_index_columns) {
        const auto& cols = *a.unique_index_columns;
        if (!cols.empty()) check_index_columns(cols);
        next.unique_index_columns = cols.empty() ? std::nullopt : OptTextList(cols);
        if (rel) {
            // The old managed index first: the new one may have the same name. The same columns
            // again recreate the managed index if it went missing (create_unique_index keeps an
            // existing one).
            if (def->unique_index_columns && next.unique_index_columns != def->unique_index_columns)
                drop_unique_index(ctx, *rel, *def->unique_index_columns);
            if (next.unique_index_columns)
                ctx.response.set("index",
                                 create_unique_index(ctx, *rel, *next.unique_index_columns));
        }
    }
    if (next.refresh_strategy == "concurrent" && rel &&
        !catalog::has_concurrent_refresh_index(ctx.spi, rel->oid))
        throw Error(
            sqlstate::object_not_in_prerequisite_state,
            fmt::format("{} has no unique index usable by REFRESH ... CONCURRENTLY", rel->quoted))
            .hint(unique_index_hint(*rel, next.unique_index_columns));
    next.owner = rel ? rel->owner_name : def->owner;
    ctx.strategy = next.refresh_strategy;

    note_change(changes, "refresh_strategy", def->refresh_strategy, next.refresh_strategy);
    note_change(changes, "unique_index_columns", columns_json(def->unique_index_columns),
                columns_json(next.unique_index_columns));
    note_change(changes, "options", def->options, next.options);
    note_change(changes, "enabled", def->enabled, next.enabled);
    ctx.store.update(next);
    // Capture starts with the strategy (its first refresh is a full one) and stops with it (the
    // worker drops the triggers no view needs).
    if (rel && next.refresh_strategy == "incremental" && def->refresh_strategy != "incremental")
        start_incremental(ctx, *rel, def->id, next);
    else if (next.refresh_strategy != "incremental" && def->refresh_strategy == "incremental")
        ctx.store.reset_incremental_state(def->id, {});
    ctx.response.set("changes", std::move(changes));
    ctx.status = "updated";
}

}  // namespace

Json alter(const AlterArgs& args) {
    // alter: one recorded operation.
    Operation op{"alter", raw_name(args.name)};
    Json request = Json::object();
    request.set("refresh_strategy", args.refresh_strategy ? Json(*args.refresh_strategy) : Json());
    request.set("unique_index_columns", columns_json(args.unique_index_columns));
    request.set("options", args.options ? *args.options : Json());
    request.set("enabled", args.enabled ? Json(*args.enabled) : Json());
    return run(op, request, [&](Context& ctx) { alter_body(ctx, args); });
}

}  // namespace mv::ops
