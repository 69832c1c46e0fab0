// The library's entry: _PG_init defines the GUCs and, when loaded through
// shared_preload_libraries, registers the launcher background worker.
#include "module.hpp"

#include "worker/launcher.hpp"

extern "C" {
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

namespace mv {

Settings settings;

namespace {

void define_gucs() {
    // Registers every matviews.* setting.
    DefineCustomIntVariable("matviews.launcher_naptime",
                            "How often the launcher looks for databases with matviews installed.",
                            "In milliseconds. CREATE and DROP EXTENSION also wake it at once.",
                            &settings.launcher_naptime_ms, 5000, 100, 3600 * 1000, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "matviews.swap_lock_timeout",
        "How long one attempt of a swap waits for the view's exclusive lock.",
        "Readers that arrive while a swap waits queue behind it for at most this "
        "long; then the swap lets go, backs off and retries. 0 means never queue: "
        "each attempt takes the lock only if it is free at once (NOWAIT).",
        &settings.swap_lock_timeout_ms, 100, 0, 60 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "matviews.swap_lock_attempts",
        "How many times a swap tries to take the view's exclusive lock before giving up.",
        "Between attempts it sleeps with exponential backoff and jitter (20 ms doubling, "
        "at most 2 s). Giving up leaves the old view untouched.",
        &settings.swap_lock_attempts, 20, 1, 100000, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("matviews");
}

}  // namespace

}  // namespace mv

void _PG_init(void) {
    // Defines settings; registers the launcher only at postmaster start (preload).
    mv::define_gucs();
    if (process_shared_preload_libraries_in_progress) mv::worker::register_launcher();
}
