// Shared background-process plumbing (see bgw.hpp).
#include "worker/bgw.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/wait_event.h"
}

#include "module.hpp"

namespace mv::worker {

int effective_max_workers_per_owner() {
    // The default leaves half of the workers to other roles; an explicit value is capped.
    int limit = worker_settings.max_workers_per_owner;
    if (limit < 0) limit = settings.max_workers / 2;
    return std::clamp(limit, 1, std::max(1, settings.max_workers));
}

void setup_signals() {
    // Installs the handlers before unblocking signals, as bgworker.h requires.
    pg::call([] {
        pqsignal(SIGHUP, SignalHandlerForConfigReload);
        pqsignal(SIGTERM, die);
        BackgroundWorkerUnblockSignals();
    });
}

bool wait_latch(long timeout_ms) {
    // WaitLatch, ResetLatch, CHECK_FOR_INTERRUPTS.
    int events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout_ms >= 0 ? WL_TIMEOUT : 0);
    int rc = pg::call([&] {
        int r = WaitLatch(MyLatch, events, timeout_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        return r;
    });
    return (rc & WL_LATCH_SET) != 0;
}

bool reload_config_if_requested() {
    // ProcessConfigFile when SIGHUP arrived.
    if (!ConfigReloadPending) return false;
    ConfigReloadPending = false;
    pg::call([] { ProcessConfigFile(PGC_SIGHUP); });
    return true;
}

void report_activity(const std::string& activity) {
    // pgstat_report_activity.
    const char* a = activity.c_str();
    bool idle = activity.empty();
    pg::call(
        [&] { pgstat_report_activity(idle ? STATE_IDLE : STATE_RUNNING, idle ? nullptr : a); });
}

BackgroundWorker describe_worker(const char* function, const std::string& name, const char* type,
                                 int restart_time, Datum main_arg, pid_t notify_pid) {
    // Fills the fields every matviews process shares.
    BackgroundWorker w;
    std::memset(&w, 0, sizeof w);
    w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w.bgw_start_time = BgWorkerStart_RecoveryFinished;
    w.bgw_restart_time = restart_time;
    strlcpy(w.bgw_library_name, "matviews", BGW_MAXLEN);
    strlcpy(w.bgw_function_name, function, BGW_MAXLEN);
    strlcpy(w.bgw_name, name.c_str(), BGW_MAXLEN);
    strlcpy(w.bgw_type, type, BGW_MAXLEN);
    w.bgw_main_arg = main_arg;
    w.bgw_notify_pid = notify_pid;
    return w;
}

BackgroundWorkerHandle* start_dynamic_worker(BackgroundWorker& w) {
    // RegisterDynamicBackgroundWorker under the guard.
    BackgroundWorkerHandle* handle = nullptr;
    bool ok = pg::call([&] { return RegisterDynamicBackgroundWorker(&w, &handle); });
    return ok ? handle : nullptr;
}

void set_application_name(const std::string& name) {
    // SetConfigOption("application_name"), which also reports it to pgstat.
    const char* n = name.c_str();
    pg::call([&] { SetConfigOption("application_name", n, PGC_USERSET, PGC_S_SESSION); });
}

}  // namespace mv::worker
