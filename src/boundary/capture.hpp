// Change capture for watched views, in the writer's backend: the statement trigger on a watched
// table (and a refresh of a managed view, which its watching views read) notes the relation in
// backend-local memory; a transaction callback hands the notes to the worker's shared memory
// only when the transaction commits. Nothing is written to a table and no lock is taken in the
// writer's transaction. A rolled-back subtransaction takes its notes with it, so a rolled-back
// write causes no refresh. It sits below the catalog layer; the worker installs the function that
// publishes the notes (set_change_publisher); without it (no preload) the notes are dropped, and
// the scheduler treats every watched view as stale once when it starts.
#pragma once

#include "boundary/guard.hpp"

namespace mv::pg {

// What the worker does at commit with the relations a transaction changed: counts[i] statements
// changed relids[i]; overflow means more relations changed than were noted one by one (treat
// every watched view of the database as changed). It runs in a commit callback: it must not
// raise, allocate or wait.
using ChangePublisher = void (*)(Oid dboid, const Oid* relids, const uint32* counts, int n,
                                 bool overflow, TimestampTz commit_time);

// Installed once at preload.
void set_change_publisher(ChangePublisher publisher);

// Notes that a statement of the current (sub)transaction changed relid. Cheap: no allocation,
// no catalog access; the first call in a backend registers the transaction callbacks.
void note_change(Oid relid);

}  // namespace mv::pg
