// The job worker (see jobs.hpp).
#include "worker/jobs.hpp"

#include "boundary/scopes.hpp"
#include "boundary/xact.hpp"
#include "catalog/store.hpp"
#include "ops/ops.hpp"
#include "worker/bgw.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace mv::worker {

namespace {

void job_main(Datum) {
    // Connect as the owner, claim the run, run it, exit.
    JobArgs a;
    std::memcpy(&a, MyBgworkerEntry->bgw_extra, sizeof a);
    setup_signals();
    pg::call([&] {
        BackgroundWorkerInitializeConnectionByOid(a.database,
                                                  a.connect_as_role ? a.role : InvalidOid, 0);
    });
    set_application_name("matviews job");
    std::optional<pg::RoleScope> as_owner;
    if (!a.connect_as_role) as_owner.emplace(a.role, true);

    std::optional<catalog::Store::QueuedRun> claimed;
    pg::in_transaction(
        [&](pg::Spi& spi) { claimed = catalog::Store(spi).claim_queued_run(a.run_id); });
    if (!claimed) return;
    const catalog::Store::QueuedRun& run = *claimed;

    report_activity(fmt::format("matviews: {} {}{}", run.operation, run.view,
                                run.strategy ? " (" + *run.strategy + ")" : std::string()));
    pg::in_transaction_plain([&] {
        if (run.operation == "swap") {
            ops::SwapArgs s;
            s.name = run.view;
            s.trigger = run.trigger;
            s.queued_run_id = a.run_id;
            ops::swap(s);
        } else {
            ops::RefreshArgs r;
            r.name = run.view;
            r.strategy = run.strategy;
            r.trigger = run.trigger;
            r.queued_run_id = a.run_id;
            ops::refresh(r);
        }
    });
    report_activity("");
}

}  // namespace

BackgroundWorkerHandle* start_job(const JobArgs& args) {
    // Registers the dynamic worker, notifying the scheduler when it stops.
    BackgroundWorker w;
    std::memset(&w, 0, sizeof w);
    w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w.bgw_start_time = BgWorkerStart_RecoveryFinished;
    w.bgw_restart_time = BGW_NEVER_RESTART;
    strlcpy(w.bgw_library_name, "matviews", BGW_MAXLEN);
    strlcpy(w.bgw_function_name, "matviews_job_main", BGW_MAXLEN);
    snprintf(w.bgw_name, BGW_MAXLEN, "matviews job for run %lld",
             static_cast<long long>(args.run_id));
    strlcpy(w.bgw_type, "matviews job", BGW_MAXLEN);
    static_assert(sizeof(JobArgs) <= BGW_EXTRALEN, "JobArgs must fit in bgw_extra");
    std::memcpy(w.bgw_extra, &args, sizeof args);
    w.bgw_notify_pid = MyProcPid;
    BackgroundWorkerHandle* handle = nullptr;
    bool ok = pg::call([&] { return RegisterDynamicBackgroundWorker(&w, &handle); });
    return ok ? handle : nullptr;
}

}  // namespace mv::worker

void matviews_job_main(Datum arg) {
    // The job worker's entry point, under the worker guard.
    mv::pg::guard_worker(mv::worker::job_main, arg);
}
