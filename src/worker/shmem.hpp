// The shared state of matviews' background processes (only when the library is preloaded): the
// launcher's latch, one slot per database served by a scheduler, the cluster-wide count of
// running jobs, and the commit-time wake-ups that backends send to schedulers.
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
void note_scheduler_started(Oid dboid, int pid);
void note_scheduler_stopped(Oid dboid, int pid);

// Scheduler side.
void scheduler_attach(Oid dboid);
// Records whether matviews is installed there and clears the scheduler's pid.
void scheduler_detach(Oid dboid, bool installed);
// The latest definitions version of a database (bumped by commits that change definitions).
uint32_t definitions_version(Oid dboid);
// Reserves one of matviews.max_workers cluster-wide job slots for a database's scheduler; false
// when all are taken. The scheduler releases it when it sees the job end.
bool try_reserve_job(Oid dboid, int max_workers);
void release_job(Oid dboid);
int running_jobs();

// Backend side: ask the launcher to start a scheduler for this database now (CREATE EXTENSION).
void request_scheduler(Oid dboid);
// Stops the scheduler of a database (and keeps it stopped for a few seconds), waiting up to
// timeout_ms for it to exit: DROP DATABASE and friends need the database to themselves. The
// scheduler ends its running jobs as it exits (jobs_must_stop).
void stop_scheduler(Oid dboid, int timeout_ms);
// Scheduler side: whether stop_scheduler asked for this database, so the jobs must end too.
bool jobs_must_stop(Oid dboid);
// Whether a scheduler serves this database now.
bool scheduler_running(Oid dboid);

}  // namespace mv::worker
