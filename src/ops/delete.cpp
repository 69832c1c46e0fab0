// delete: DROP MATERIALIZED VIEW, refused while dependents exist unless cascade, and removal of
// the definition (and, with cascade, of the definitions of dropped dependents).
#include "ops/common.hpp"

#include "boundary/scopes.hpp"

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

void delete_missing(Context& ctx, const DeleteArgs& a, const QualifiedName& q) {
    // The view does not exist: remove a kept definition, skip, or fail.
    auto def = ctx.store.find(q);
    ctx.view = def ? pg::quote_qualified(def->schema, def->name) : display_name(q);
    if (def && !a.keep_definition) {
        ctx.definition_id = def->id;
        ctx.owner = def->owner;
        require_definition_owner(*def, ctx.view);
        if (!ctx.lock_view()) return;
        ctx.store.remove(def->id);
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

void delete_body(Context& ctx, const DeleteArgs& a) {
    // Resolve, lock, check dependents, drop, forget the definition(s).
    QualifiedName q = require_name(ctx, a.name);
    auto rel = catalog::find_relation(q);
    if (!rel) return delete_missing(ctx, a, q);
    ctx.view = rel->quoted;
    if (rel->relkind != 'm') catalog::throw_not_matview(*rel);
    auto def = definition_of(ctx, *rel);
    // As DROP does: ownership first, so a non-owner learns nothing about dependents.
    catalog::require_owner(*rel);
    if (!ctx.lock_view()) return;

    auto deps = catalog::dependents(ctx.spi, rel->oid);
    if (!deps.empty() && !a.cascade)
        throw Error(sqlstate::dependent_objects_still_exist,
                    fmt::format("cannot delete {} because other objects depend on it", rel->quoted))
            .detail(fmt::format("Dependents: {}.", describe(deps)))
            .hint(fmt::format(
                "Dependents: {}. Drop them first, or call matviews.delete({}, cascade => true) "
                "to drop them too.",
                describe(deps), pg::quote_literal(rel->quoted)));
    try {
        ctx.execute(
            fmt::format("DROP MATERIALIZED VIEW {}{}", rel->quoted, a.cascade ? " CASCADE" : ""));
    } catch (const PgError& e) {
        // Objects other than views can depend on the view (a function taking its row type, a
        // column of that type): PostgreSQL's refusal, with matviews' way out in the hint.
        if (e.sqlstate() != sqlstate::dependent_objects_still_exist) throw;
        throw Error(sqlstate::dependent_objects_still_exist,
                    fmt::format("cannot delete {} because other objects depend on it", rel->quoted))
            .detail(e.info().detail)
            .hint(fmt::format("Drop them first, or call matviews.delete({}, cascade => true) to "
                              "drop them too.",
                              pg::quote_literal(rel->quoted)));
    }

    Json removed = Json::array();
    if (def && !a.keep_definition) {
        ctx.store.remove(def->id);
        removed.push(rel->quoted);
    }
    Json dropped = Json::array();
    for (const auto& d : deps) {
        dropped.push(d.quoted);
        if (d.relkind != 'm' || a.keep_definition) continue;
        QualifiedName dq = parse_qualified_name(d.quoted);
        auto ddef = ctx.store.find(*dq.schema, dq.name);
        if (ddef && !catalog::find_relation(dq)) {
            ctx.store.remove(ddef->id);
            removed.push(d.quoted);
        }
    }
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
