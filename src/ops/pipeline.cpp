// The operation pipeline (see pipeline.hpp).
#include "ops/pipeline.hpp"

#include "boundary/args.hpp"

namespace mv::ops {

namespace {

[[noreturn]] void throw_missing(const std::string& shown) {
    throw Error(sqlstate::undefined_table,
                fmt::format("materialized view {} does not exist", shown))
        .hint("Check the name and search_path, or create it with matviews.create().");
}

void check_rights(Context& ctx, const catalog::RelationInfo& rel) {
    // Step 3, as REFRESH, ALTER and DROP check it: ownership first, whatever else is wrong.
    ctx.view = rel.quoted;
    if (rel.relkind != 'm') catalog::throw_not_matview(rel);
    catalog::require_owner(rel);
    ctx.rights_checked = true;
    ctx.owner = rel.owner_name;
}

enum class Outcome { locked, skipped, retry };

Outcome lock_and_read(Context& ctx, Target& t, const Resolve& how) {
    // Steps 4 and 5 for a relation whose rights were checked.
    catalog::RelationInfo& rel = *t.rel;
    auto seen = ctx.store.find_by_relid(rel.oid);  // before the lock: only to choose its key
    if (how.lock && !ctx.lock_view(seen ? pg::ViewLockKey::definition(seen->id)
                                        : pg::ViewLockKey::relation(rel.oid)))
        return Outcome::skipped;
    if (seen) {
        t.def = ctx.store.find_by_id(seen->id);
        if (!t.def || t.def->relid == InvalidOid) return Outcome::retry;  // deleted or detached
        if (t.def->relid != rel.oid) {
            // A swap committed in between: the definition names the view's new relation.
            auto moved = catalog::relation_by_oid(t.def->relid);
            if (!moved) return Outcome::retry;
            rel = *moved;
            check_rights(ctx, rel);
        }
    } else {
        t.def = ctx.store.find_by_relid(rel.oid);
        // Adopted in between: the definition's lock is the one that counts now.
        if (t.def && how.lock && !ctx.lock_view(pg::ViewLockKey::definition(t.def->id)))
            return Outcome::skipped;
    }
    if (how.lock) {
        if (!pg::lock_relation_shared(rel.oid)) return Outcome::retry;
        // Locked: from here on its name, schema and owner are stable. Read them again.
        auto now = catalog::relation_by_oid(rel.oid);
        if (!now) return Outcome::retry;
        rel = *now;
        check_rights(ctx, rel);
    }
    if (t.def) {
        ctx.definition_id = t.def->id;
        if (how.lock)
            ctx.watch_seen = catalog::WatchSeen{t.def->change_seq, t.def->pending_changes,
                                                pg::current_timestamp()};
    }
    return Outcome::locked;
}

std::optional<Target> detached(Context& ctx, const QualifiedName& q, const Resolve& how) {
    // No relation of that name: the detached definition recorded under it, for its owner.
    Target t;
    auto seen = ctx.store.find_detached(q);
    if (!seen) return t;
    ctx.view = pg::quote_qualified(seen->schema, seen->name);
    require_definition_owner(*seen, ctx.view);
    ctx.rights_checked = true;
    ctx.owner = seen->owner;
    if (how.lock && !ctx.lock_view(pg::ViewLockKey::definition(seen->id))) return std::nullopt;
    t.def = ctx.store.find_by_id(seen->id);
    if (t.def && t.def->relid != InvalidOid) t.def.reset();  // bound meanwhile (adopt)
    if (t.def) ctx.definition_id = t.def->id;
    return t;
}

}  // namespace

std::optional<Target> lock_resolved(Context& ctx, const catalog::RelationInfo& rel,
                                    const Resolve& how) {
    Target t;
    t.rel = rel;
    check_rights(ctx, *t.rel);
    switch (lock_and_read(ctx, t, how)) {
        case Outcome::locked:
            return t;
        case Outcome::skipped:
            return std::nullopt;
        case Outcome::retry:
            break;
    }
    ctx.skip("changed concurrently");
    return std::nullopt;
}

std::optional<Target> resolve_view(Context& ctx, const OptText& name, std::optional<Oid> relid,
                                   const Resolve& how) {
    std::optional<QualifiedName> q;
    if (!relid) q = require_name(ctx, name);  // step 1
    // A background run follows its relation through a swap that committed after the job read
    // the run (the swap moved the run to the new OID), never through a name.
    auto moved = [&] {
        if (!relid || !ctx.queued_run_id) return false;
        Oid now = ctx.store.run_relid(*ctx.queued_run_id);
        if (!OidIsValid(now) || now == *relid) return false;
        relid = now;
        return true;
    };
    for (int attempt = 0;; attempt++) {
        Target t;
        t.rel = relid ? catalog::relation_by_oid(*relid) : catalog::find_relation(*q);  // step 2
        if (!t.rel) {
            if (relid && attempt == 0 && moved()) continue;
            if (relid) throw_missing(ctx.view);
            if (how.allow_missing) return detached(ctx, *q, how);
            throw_missing(display_name(*q));
        }
        check_rights(ctx, *t.rel);
        switch (lock_and_read(ctx, t, how)) {
            case Outcome::locked:
                return t;
            case Outcome::skipped:
                return std::nullopt;
            case Outcome::retry:
                break;
        }
        // The relation or its definition went away under us: once more from the name. An OID
        // is never re-resolved by name.
        if (relid && attempt == 0 && moved()) {
            ctx.definition_id.reset();
            continue;
        }
        if (relid) throw_missing(ctx.view);
        if (attempt >= 1) {
            ctx.skip("changed concurrently");
            return std::nullopt;
        }
        ctx.definition_id.reset();
    }
}

}  // namespace mv::ops
