// What every matviews background process shares: signal handling, the latch wait, config reload,
// registration of workers. Each call goes through pg::call.
#pragma once

#include "boundary/guard.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace mv::worker {

// The worker's own settings (defined in module.cpp, next to mv::Settings).
struct WorkerSettings {
    int max_workers_per_owner = -1;   // matviews.max_workers_per_owner; -1: half of max_workers
    int job_lock_timeout_ms = 60000;  // matviews.job_lock_timeout; 0: no limit
};
extern WorkerSettings worker_settings;
// max_workers_per_owner as it applies: -1 means half of max_workers, at least 1; never above
// max_workers.
int effective_max_workers_per_owner();

// SIGHUP sets the reload flag, SIGTERM ends the process at the next interrupt check; then
// signals are unblocked. Must run first in a worker's main.
void setup_signals();

// Waits on the process latch for up to timeout_ms (-1: no timeout), exiting on postmaster death;
// resets the latch and checks for interrupts afterwards. True when the latch was set.
bool wait_latch(long timeout_ms);

// Rereads the configuration files if SIGHUP arrived since the last call; true when it did.
bool reload_config_if_requested();

// A BackgroundWorker of this library: name and type as shown in pg_stat_activity, the entry
// function, restart policy; with database connection and shared memory access, started once
// recovery has finished, notifying notify_pid (0: nobody) when it starts and stops.
BackgroundWorker describe_worker(const char* function, const std::string& name, const char* type,
                                 int restart_time, Datum main_arg, pid_t notify_pid);
// Registers a dynamic background worker; nullptr when no slot is free.
BackgroundWorkerHandle* start_dynamic_worker(BackgroundWorker& w);

// Shows `activity` in pg_stat_activity.query (running), or idle when empty.
void report_activity(const std::string& activity);

// Sets application_name for this process.
void set_application_name(const std::string& name);

}  // namespace mv::worker
