// Commit-time wake-ups: a backend that changed what a scheduler must do (a queued run, a
// definition) asks for the wake-up now, and it happens only if the transaction commits. It sits
// below the catalog layer so that the catalog gateway can ask without knowing about the worker's
// shared memory; the worker installs the functions that deliver the wake-ups (set_commit_waker).
#pragma once

#include "boundary/guard.hpp"

namespace mv::pg {

// What the worker does at commit, in the committing backend.
struct CommitWaker {
    void (*wake)(Oid dboid, bool definitions_changed) = nullptr;  // set the scheduler's latch
    void (*request_scheduler)(Oid dboid) = nullptr;               // ask the launcher for one
};

// Installed once at preload; without it (no preload) the wake-ups are no-ops.
void set_commit_waker(const CommitWaker& waker);

// At commit of the current transaction, wake this database's scheduler; with
// definitions_changed, also tell it to reread the definitions. Nothing happens on abort.
void wake_scheduler_at_commit(bool definitions_changed);
// At commit of the current transaction, ask the launcher for a scheduler for this database
// (CREATE EXTENSION: the scheduler must see the extension committed).
void request_scheduler_at_commit();

}  // namespace mv::pg
