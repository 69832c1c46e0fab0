// The launcher: started by the postmaster once recovery has finished (so never on a hot standby,
// and after promotion), it waits on its latch, reloads its configuration on SIGHUP, ends on
// SIGTERM and exits with the postmaster.
#include "worker/launcher.hpp"

#include "module.hpp"
#include "worker/bgw.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace mv::worker {

namespace {

constexpr const char* kLauncherName = "matviews launcher";

void launcher_loop(Datum) {
    // The launcher's main loop.
    setup_signals();
    pg::call([] { BackgroundWorkerInitializeConnection(nullptr, nullptr, 0); });
    set_application_name(kLauncherName);
    report_activity("");
    pg::log(pg::LogLevel::log, "matviews launcher started");
    for (;;) {
        wait_latch(settings.launcher_naptime_ms);
        if (reload_config_if_requested())
            pg::log(pg::LogLevel::log, "matviews launcher: configuration reloaded");
    }
}

}  // namespace

void register_launcher() {
    // Fills in a BackgroundWorker and registers it with the postmaster.
    BackgroundWorker w;
    std::memset(&w, 0, sizeof w);
    w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w.bgw_start_time = BgWorkerStart_RecoveryFinished;
    w.bgw_restart_time = 5;
    strlcpy(w.bgw_library_name, "matviews", BGW_MAXLEN);
    strlcpy(w.bgw_function_name, "matviews_launcher_main", BGW_MAXLEN);
    strlcpy(w.bgw_name, kLauncherName, BGW_MAXLEN);
    strlcpy(w.bgw_type, kLauncherName, BGW_MAXLEN);
    pg::call([&] { RegisterBackgroundWorker(&w); });
}

}  // namespace mv::worker

void matviews_launcher_main(Datum arg) {
    // The launcher's entry point, under the worker guard.
    mv::pg::guard_worker(mv::worker::launcher_loop, arg);
}
