// The library's entry: _PG_init defines the GUCs and, when loaded through
// shared_preload_libraries, registers the launcher background worker.
#include "module.hpp"

#include "worker/bgw.hpp"
#include "worker/hooks.hpp"
#include "worker/launcher.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "pgtime.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

namespace mv {

Settings settings;

namespace worker {
WorkerSettings worker_settings;
}  // namespace worker

namespace {

extern "C" bool matviews_check_timezone(char** newval, void** extra, GucSource source) {
    // A time zone name PostgreSQL knows (pg_tzset).
    if (*newval == nullptr || pg_tzset(*newval) == nullptr) {
        GUC_check_errdetail("\"%s\" is not a time zone PostgreSQL knows.", *newval ? *newval : "");
        GUC_check_errhint("Use a name from pg_timezone_names, such as 'UTC' or 'Europe/Paris'.");
        return false;
    }
    return true;
}

void define_gucs() {
    // Registers every matviews.* setting.
    DefineCustomIntVariable("matviews.launcher_naptime",
                            "How often the launcher looks for databases with matviews installed.",
                            "In milliseconds. CREATE and DROP EXTENSION also wake it at once.",
                            &settings.launcher_naptime_ms, 5000, 100, 3600 * 1000, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "matviews.swap_lock_timeout",
        "The longest a swap's lock attempt may make readers queue behind it.",
        "A swap first waits for the sessions holding the view without joining its lock queue, "
        "then takes the lock only if it is free; only when readers keep taking it back does an "
        "attempt queue, for at most this long. 0: attempts never wait at all (NOWAIT, then "
        "sleep and retry).",
        &settings.swap_lock_timeout_ms, 100, 0, 60 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "matviews.swap_lock_attempts",
        "How many times a swap tries to take the view's exclusive lock before giving up.",
        "Between attempts it sleeps with exponential backoff and jitter (20 ms doubling, "
        "at most 2 s). Giving up leaves the old view untouched.",
        &settings.swap_lock_attempts, 20, 1, 100000, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "matviews.max_workers", "How many matviews jobs may run at once, across the cluster.",
        "Each job is a background worker: max_worker_processes must leave room for "
        "max_workers jobs plus one launcher and one scheduler per database with matviews.",
        &settings.max_workers, 2, 1, 256, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "matviews.max_workers_per_owner",
        "How many matviews jobs of one role may run at once, across the cluster.",
        "The role is the one a job runs as (the view's owner). -1: half of max_workers, at least "
        "1. Due runs of different roles take turns for free workers, so one role's backlog "
        "never holds back another role's run by more than one job.",
        &worker::worker_settings.max_workers_per_owner, -1, -1, 256, PGC_SIGHUP, 0, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "matviews.job_lock_timeout",
        "The longest a background job waits for a lock on the view it works on.",
        "A job that waits longer fails (SQLSTATE 55P03) and is retried with backoff like any "
        "failure, so a session holding the view's lock cannot keep a worker forever. 0: no "
        "limit.",
        &worker::worker_settings.job_lock_timeout_ms, 60 * 1000, 0, INT_MAX, PGC_SIGHUP,
        GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("matviews.timezone", "The time zone of cron schedules.", nullptr,
                               &settings.timezone, "UTC", PGC_SIGHUP, 0, matviews_check_timezone,
                               nullptr, nullptr);
    DefineCustomIntVariable(
        "matviews.runs_retention", "How long finished runs stay in matviews.runs.",
        "The scheduler deletes older finished runs about once a minute. 0 keeps them forever.",
        &settings.runs_retention_s, 30 * 24 * 3600, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "matviews.scheduler_naptime", "How often an idle scheduler looks for outside changes.",
        "Commits that enqueue or change schedules, and jobs that end, wake it at once, and it "
        "wakes for the next due time; only every this long does an idle scheduler run a "
        "transaction, to notice DROP EXTENSION and changes made without matviews' functions.",
        &settings.scheduler_naptime_ms, 10 * 1000, 10, 60 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
        nullptr, nullptr);
    DefineCustomRealVariable(
        "matviews.incremental_max_fraction",
        "The largest part of an incremental view a refresh recomputes by key.",
        "When the changes since the last refresh affect more keys than this fraction of the "
        "view's estimated rows, the refresh is a full one (CONCURRENTLY), which is then cheaper. "
        "1 turns this fallback off.",
        &settings.incremental_max_fraction, 0.3, 0.0, 1.0, PGC_USERSET, 0, nullptr, nullptr,
        nullptr);
    MarkGUCPrefixReserved("matviews");
}

}  // namespace

}  // namespace mv

void _PG_init(void) {
    // Defines settings; registers the launcher only at postmaster start (preload).
    mv::define_gucs();
    if (process_shared_preload_libraries_in_progress) {
        mv::worker::install_shmem_hooks();
        mv::worker::install_utility_hook();
        mv::worker::register_launcher();
    }
}
