// The operation pipeline: how every operation (SQL function or job) finds the view it acts on, in
// one fixed order:
//   1. parse the name (or take the OID a queued run or a cascade carries);
//   2. resolve it to a relation OID;
//   3. check the caller's rights on that relation (42501, before anything is read or recorded
//      against the view's owner);
//   4. take the per-view lock, keyed by the definition's id for a managed view and by the OID
//      for one that is not (pg::ViewLockKey), so a swap, which gives the view a new OID, never
//      lets two operations on one view run at once; then AccessShareLock on the relation, so it
//      can no longer be dropped, renamed or moved while the operation runs;
//   5. read the definition by OID, under that lock.
// An operation that resolved an OID that a concurrent swap or DROP replaced re-resolves once (by
// the definition's new OID after a swap, by name otherwise) and otherwise answers 42P01 or
// `skipped`, never an internal error. Steps 6 (run) and 7 (record) are the operation's body and
// the runner (runner.hpp).
#pragma once

#include "ops/common.hpp"

namespace mv::ops {

struct Resolve {
    // Take the per-view lock (false: enqueue, which only records a request).
    bool lock = true;
    // A missing relation is not an error: the target comes back without one, and with the
    // detached definition of that name, if any, for its owner (delete, alter, unschedule).
    bool allow_missing = false;
};

// What the pipeline found, rights checked and locked.
struct Target {
    std::optional<catalog::RelationInfo> rel;
    std::optional<catalog::Definition> def;
};

// Steps 1-5 for a name argument, or for a relation OID (a queued run, a cascade; then no name
// is ever resolved). nullopt when the operation is skipped (another session holds the view):
// ctx.status says so.
std::optional<Target> resolve_view(Context& ctx, const OptText& name, std::optional<Oid> relid,
                                   const Resolve& how = {});

// Steps 3-5 for a relation already resolved (create(force) of an existing view).
std::optional<Target> lock_resolved(Context& ctx, const catalog::RelationInfo& rel,
                                    const Resolve& how = {});

}  // namespace mv::ops
