// Job workers: one dynamic background worker per run. The scheduler starts them; each connects
// to the database as the view's owner, marks its run running (committed, so a crash leaves a
// trace the next scheduler marks failed), runs the operation and exits.
#pragma once

#include "boundary/guard.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace mv::worker {

// What a job worker needs, passed in bgw_extra.
struct JobArgs {
    Oid database;
    Oid role;              // the view's owner
    bool connect_as_role;  // false: the owner cannot log in; connect as the bootstrap superuser
                           // and switch to the owner, as REFRESH does for the view's query
    int64 run_id;
    int lock_timeout_ms;  // matviews.job_lock_timeout when the scheduler started it; 0: none
};

// Starts a job worker for a queued run; nullptr when no background worker slot is free.
BackgroundWorkerHandle* start_job(const JobArgs& args);

}  // namespace mv::worker

extern "C" PGDLLEXPORT void matviews_job_main(Datum arg);
