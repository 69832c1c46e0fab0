// The job worker (see jobs.hpp).
#include "worker/jobs.hpp"

#include "boundary/scopes.hpp"
#include "boundary/xact.hpp"
#include "catalog/store.hpp"
#include "ops/ops.hpp"
#include "ops/runner.hpp"
#include "worker/bgw.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace mv::worker {

namespace {

void run_operation(const catalog::Store::QueuedRun& run, int64_t run_id, int lock_timeout_ms);

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
    // Not a security-restricted operation: REFRESH ... CONCURRENTLY creates its diff table in
    // the caller's security context, which must allow temporary tables. The owner's rights
    // apply as in a SECURITY DEFINER function it owns (no SET ROLE); the process ends with the
    // run, so nothing the owner's code leaves in the session outlives it.
    std::optional<pg::RoleScope> as_owner;
    if (!a.connect_as_role) as_owner.emplace(a.role, false);

    std::optional<catalog::Store::QueuedRun> claimed;
    std::string shown_strategy;
    pg::in_transaction([&](pg::Spi& spi) {
        catalog::Store store(spi);
        claimed = store.claim_queued_run(a.run_id);
        if (claimed) shown_strategy = store.effective_strategy(a.run_id, claimed->strategy);
    });
    if (!claimed) return;
    const catalog::Store::QueuedRun& run = *claimed;

    report_activity(fmt::format("matviews: {} {} ({})", run.operation, run.view, shown_strategy));
    // A query cancel (matviews.cancel, pg_cancel_backend) or a timeout of the owner's session
    // settings is raised through the operation; the transaction has rolled the work back, so
    // the view is untouched, and the run is recorded here: cancelled, or failed for a timeout.
    try {
        run_operation(run, a.run_id, a.lock_timeout_ms);
    } catch (const Error& e) {
        // The runner raises a cancel again as an Error with PostgreSQL's fields.
        if (!pg::is_cancel(e.info())) throw;
        bool by_user = e.info().message.find("user request") != std::string::npos;
        pg::in_transaction([&](pg::Spi& spi) {
            catalog::Store(spi).end_interrupted_run(a.run_id, by_user, ops::error_json(e.info()));
        });
    }
    report_activity("");
}

void run_operation(const catalog::Store::QueuedRun& run, int64_t run_id, int lock_timeout_ms) {
    pg::in_transaction_plain([&] {
        // matviews.job_lock_timeout: a job never waits for a lock forever; the run then fails
        // (55P03) and backs off like any failure. A view's own lock_timeout option, which the
        // operation applies inside this scope, still wins.
        pg::GucScope lock_limit;
        if (lock_timeout_ms > 0)
            lock_limit.set("lock_timeout", fmt::format("{}ms", lock_timeout_ms));
        if (run.operation == "swap") {
            ops::SwapArgs s;
            s.name = run.view;
            s.relid = run.relid;  // by OID: a queued run never follows a name
            s.trigger = run.trigger;
            s.queued_run_id = run_id;
            ops::swap(s);
        } else {
            ops::RefreshArgs r;
            r.name = run.view;
            r.relid = run.relid;
            r.strategy = run.strategy;
            r.trigger = run.trigger;
            r.queued_run_id = run_id;
            ops::refresh(r);
        }
    });
}

}  // namespace

BackgroundWorkerHandle* start_job(const JobArgs& args) {
    // Registers the dynamic worker, notifying the scheduler when it stops.
    BackgroundWorker w =
        describe_worker("matviews_job_main",
                        fmt::format("matviews job for run {}", static_cast<long long>(args.run_id)),
                        "matviews job", BGW_NEVER_RESTART, (Datum)0, MyProcPid);
    static_assert(sizeof(JobArgs) <= BGW_EXTRALEN, "JobArgs must fit in bgw_extra");
    std::memcpy(w.bgw_extra, &args, sizeof args);
    return start_dynamic_worker(w);
}

}  // namespace mv::worker

void matviews_job_main(Datum arg) {
    // The job worker's entry point, under the worker guard.
    mv::pg::guard_worker(mv::worker::job_main, arg);
}
