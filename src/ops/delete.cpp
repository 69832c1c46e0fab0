// delete: DROP MATERIALIZED VIEW, refused while dependents exist unless cascade, and removal of
// the definition (and, with cascade, of the definitions of dropped dependents).
#include "ops/common.hpp"

#include "boundary/scopes.hpp"
#include "ops/pipeline.hpp"

namespace mv::ops {

namespace {

std::string describe(const std::vector<catalog::Dependent>& deps) {
    // "public.v (view), public.mv2 (materialized view)".
    std::string out;
    for (const auto& d : deps) {
        if (!out.empty()) out += ", ";
        out += fmt::format("{} ({})", d.quoted, catalog::relkind_name(d.relkind));
    }
    return out;
}

void delete_body(Context& ctx, const DeleteArgs& a) {
    // The pipeline (a missing view may leave a kept definition), dependents, drop; the DROP
    // removes the definitions of the view and of dropped dependents (sql_drop event trigger),
    // unless keep_definition detached them first.
    auto t = resolve_view(ctx, a.name, std::nullopt, Resolve{true, true});
    if (!t) return;
    if (!t->rel) {
        if (t->def && !a.keep_definition) {
            ctx.store.remove(t->def->id);
            ctx.response.set("view_existed", false);
            ctx.response.set("definition_removed", true);
            ctx.status = "deleted";
            return;
        }
        if (a.if_exists) {
            ctx.skip("does not exist");
            return;
        }
        throw Error(sqlstate::undefined_table,
                    fmt::format("materialized view {} does not exist", ctx.view))
            .hint("Pass if_exists => true to ignore a missing view.");
    }
    const catalog::RelationInfo& rel = *t->rel;

    auto deps = catalog::dependents(ctx.spi, rel.oid);
    if (!deps.empty() && !a.cascade)
        throw Error(sqlstate::dependent_objects_still_exist,
                    fmt::format("cannot delete {} because other objects depend on it", rel.quoted))
            .detail(fmt::format("Dependents: {}.", describe(deps)))
            .hint(fmt::format(
                "Dependents: {}. Drop them first, or call matviews.delete({}, cascade => true) "
                "to drop them too.",
                describe(deps), pg::quote_literal(rel.quoted)));
    // The definitions the DROP takes with it, or that keep_definition keeps detached.
    std::vector<std::pair<int64_t, std::string>> managed;
    if (t->def) managed.emplace_back(t->def->id, rel.quoted);
    for (const auto& d : deps)
        if (d.relkind == 'm')
            if (auto dd = ctx.store.find_by_relid(d.oid)) managed.emplace_back(dd->id, d.quoted);
    if (a.keep_definition)
        for (const auto& [id, view] : managed) ctx.store.detach(id);
    try {
        ctx.execute(
            fmt::format("DROP MATERIALIZED VIEW {}{}", rel.quoted, a.cascade ? " CASCADE" : ""));
    } catch (const PgError& e) {
        // Objects other than views can depend on the view (a function taking its row type, a
        // column of that type): PostgreSQL's refusal, with matviews' way out in the hint.
        if (e.sqlstate() != sqlstate::dependent_objects_still_exist) throw;
        throw Error(sqlstate::dependent_objects_still_exist,
                    fmt::format("cannot delete {} because other objects depend on it", rel.quoted))
            .detail(e.info().detail)
            .hint(fmt::format("Drop them first, or call matviews.delete({}, cascade => true) to "
                              "drop them too.",
                              pg::quote_literal(rel.quoted)));
    }

    Json removed = Json::array();
    if (!a.keep_definition)
        for (const auto& [id, view] : managed) removed.push(view);
    Json dropped = Json::array();
    for (const auto& d : deps) dropped.push(d.quoted);
    ctx.response.set("dropped_dependents", std::move(dropped));
    ctx.response.set("definitions_removed", std::move(removed));
    ctx.status = "deleted";
}

}  // namespace

Json remove(const DeleteArgs& args) {
    // delete: one recorded operation.
    Operation op{"delete", raw_name(args.name)};
    Json request = Json::object();
    request.set("cascade", args.cascade);
    request.set("if_exists", args.if_exists);
    request.set("keep_definition", args.keep_definition);
    return run(op, request, [&](Context& ctx) { delete_body(ctx, args); });
}

}  // namespace mv::ops
