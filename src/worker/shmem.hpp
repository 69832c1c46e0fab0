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
// When the server last started or restarted after a crash (shared memory initialization), as a
// TimestampTz; pg_postmaster_start_time() does not change on a crash restart.
int64_t server_started_at();
// Whether a launcher is running.
bool launcher_running();

// What the launcher knows of one database.
struct DatabaseState {
    Oid dboid = InvalidOid;
    int scheduler_pid = 0;
    bool probed = false;       // a scheduler has looked whether matviews is installed
    bool installed = false;    // ... and found it
    bool wanted = false;       // CREATE EXTENSION asked for a scheduler
    int64_t paused_until = 0;  // TimestampTz before which no scheduler may start (DROP DATABASE)
};

// Launcher side.
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
// Backend side: at commit of the current transaction, ask the launcher for a scheduler for this
// database (CREATE EXTENSION: the scheduler must see the extension committed).
void request_scheduler_at_commit();
// Backend side: at commit of the current transaction, wake this database's scheduler; with
// definitions_changed, also tell it to reread the definitions. Nothing happens on abort.
void wake_scheduler_at_commit(bool definitions_changed);
// Stops the scheduler of a database (and keeps it stopped for a few seconds), waiting up to
// timeout_ms for it to exit: DROP DATABASE and friends need the database to themselves.
void stop_scheduler(Oid dboid, int timeout_ms);
// Whether a scheduler serves this database now.
bool scheduler_running(Oid dboid);

}  // namespace mv::worker
