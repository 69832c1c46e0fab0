// Swap: rebuild a materialized view beside the old one and swap it in atomically. Used by
// matviews.swap and by refresh(strategy => 'swap').
#pragma once

#include "ops/runner.hpp"

namespace mv::ops {

// Takes AccessExclusiveLock on each relation, in order, without ever making readers queue for
// long: each attempt waits at most matviews.swap_lock_timeout (0: NOWAIT) in its own
// subtransaction, attempts back off with jitter, and after matviews.swap_lock_attempts it gives
// up with 55P03, holding nothing. Records lock_attempts and lock_wait_ms in the response.
// purpose names the operation in the give-up message ("swap", "create").
void take_exclusive_locks(Context& ctx, const std::vector<Oid>& relations, const char* purpose);

// Rebuilds rel from new_sql (or its stored query) under a temporary name with every index,
// privilege, comment and storage setting of the old one, then, holding the exclusive lock only
// for the swap itself, replaces the old relation and re-creates its dependents. The caller has
// taken the per-view lock. Updates the definition's query when new_sql is given. Returns the
// new relation's OID, to which the definition and queued runs have moved.
Oid swap_into(Context& ctx, const catalog::RelationInfo& rel,
              const std::optional<catalog::Definition>& def,
              const std::optional<std::string>& new_sql);

}  // namespace mv::ops
