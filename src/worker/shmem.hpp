// The shared state of matviews' background processes (only when the library is preloaded): the
// launcher's latch, one slot per database served by a scheduler (with the scheduler being
// started, so it attaches once), the cluster-wide table of running jobs (by database and owner,
// for max_workers and max_workers_per_owner), the turn of databases waiting for a free job, and
// the commit-time wake-ups that backends send to schedulers, and the changes committed to watched
// relations (lock-free; see drain_changes).
#pragma once

#include "boundary/guard.hpp"

namespace mv::worker {

// Installs the shared-memory hooks (call from _PG_init during preload).
void install_shmem_hooks();
// Whether the shared state exists, i.e. matviews is in shared_preload_libraries.
bool preloaded();
// Whether a launcher is running.
bool launcher_running();
// When the first launcher of this server incarnation started (TimestampTz; 0 before): runs that
// started earlier were left by a server that has since restarted, crashed or been promoted.
int64_t serving_since();

// What the launcher knows of one database.
struct DatabaseState {
    Oid dboid = InvalidOid;
    int scheduler_pid = 0;
    bool starting = false;     // registered by a launcher, not attached (nor gone) yet
    bool probed = false;       // a scheduler has looked whether matviews is installed
    bool installed = false;    // ... and found it
    bool wanted = false;       // CREATE EXTENSION asked for a scheduler
    int64_t paused_until = 0;  // TimestampTz before which no scheduler may start (DROP DATABASE)
};

// Launcher side. The first attach after the shared state was created (server start, restart
// after a crash, promotion) records when this server began serving background work.
void launcher_attach();
void launcher_detach();
std::vector<DatabaseState> databases();
// Forgets databases that no longer exist.
void retain_databases(const std::vector<Oid>& existing);
// Before registering a scheduler: marks the slot starting and returns the generation the
// scheduler must present to attach (it travels in bgw_extra).
uint32_t note_scheduler_starting(Oid dboid);
// The registered scheduler of that generation is gone (its handle says stopped, or it could not
// be registered): the slot is no longer starting, nor served by it.
void note_scheduler_stopped(Oid dboid, uint32_t generation);

// Scheduler side. Whether the scheduler of this generation may go on (before it connects): the
// slot is not paused, and no other scheduler has attached or was registered after it.
bool scheduler_may_start(Oid dboid, uint32_t generation);
// Publishes the scheduler's pid and latch, once: false (and nothing published) when another
// scheduler serves the database, a newer one was registered, or stop_scheduler paused it.
bool scheduler_attach(Oid dboid, uint32_t generation);
// Records whether matviews is installed there, clears the scheduler's pid (or the starting
// state of its generation) and frees its job entries.
void scheduler_detach(Oid dboid, uint32_t generation, bool installed);
// The latest definitions version of a database (bumped by commits that change definitions).
uint32_t definitions_version(Oid dboid);
// The count of commit-time wake-ups of a database (any commit that queued or changed work).
uint32_t wake_count(Oid dboid);

// What try_reserve_job says.
enum class Reservation {
    kReserved,   // *entry is the job's entry; release it when the job ends
    kNoSlot,     // max_workers run, or another database has the turn: wait for a release
    kOwnerBusy,  // the owner has max_workers_per_owner jobs in the cluster
};
// Reserves one of matviews.max_workers cluster-wide job entries for a run of `owner` (a role
// OID) in dboid. Databases take turns: a scheduler refused for lack of a slot takes a ticket,
// and while tickets are out only the oldest may reserve; a reservation hands the ticket back,
// so a database with more due runs queues again behind the others. release_job wakes the
// waiting schedulers.
Reservation try_reserve_job(Oid dboid, Oid owner, int max_workers, int max_per_owner, int* entry);
void release_job(int entry);
// The scheduler has nothing it could start waiting any more: hands its ticket back.
void stop_waiting(Oid dboid);
int running_jobs();

// Changes committed to one relation since the last drain: `count` statements, the first of them
// committed at `first_at` (TimestampTz).
struct Change {
    Oid relid;
    uint64_t count;
    int64_t first_at;
};
// Scheduler side: takes the changes committed in dboid since the last call (each writer's commit
// counts its relations with atomics and sets the scheduler's latch). *overflow: more relations
// changed than could be counted one by one; every watched view must be treated as changed.
std::vector<Change> drain_changes(Oid dboid, bool* overflow);
// Whether changes wait in dboid's slots, without taking them (the scheduler between batches).
bool changes_pending(Oid dboid);

// Backend side: ask the launcher to start a scheduler for this database now (CREATE EXTENSION).
void request_scheduler(Oid dboid);
// Stops the scheduler of a database (and keeps it stopped for a few seconds), waiting up to
// timeout_ms for it to exit: DROP DATABASE and friends need the database to themselves. The
// scheduler ends its running jobs as it exits (jobs_must_stop).
void stop_scheduler(Oid dboid, int timeout_ms);
// Scheduler side: whether stop_scheduler asked for this database, so the jobs must end too.
bool jobs_must_stop(Oid dboid);
// Whether a scheduler serves this database now, or is starting for it.
bool scheduler_running(Oid dboid);

}  // namespace mv::worker
