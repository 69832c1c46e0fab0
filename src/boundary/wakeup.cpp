// Commit-time wake-ups (see wakeup.hpp): backend-local wishes, acted on by a transaction
// callback at commit and forgotten at abort.
#include "boundary/wakeup.hpp"

extern "C" {
#include "access/xact.h"
}

namespace mv::pg {

namespace {

CommitWaker g_waker;
bool wake_pending = false;
bool definitions_pending = false;
bool scheduler_request_pending = false;
bool callback_registered = false;

extern "C" void matviews_at_xact_end(XactEvent event, void*) {
    // Commit: deliver. Abort: forget. The waker's functions only touch shared memory under a
    // spinlock and set latches; they cannot raise.
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) {
        if (wake_pending && g_waker.wake) g_waker.wake(MyDatabaseId, definitions_pending);
        if (scheduler_request_pending && g_waker.request_scheduler)
            g_waker.request_scheduler(MyDatabaseId);
        wake_pending = definitions_pending = scheduler_request_pending = false;
    } else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
        wake_pending = definitions_pending = scheduler_request_pending = false;
    }
}

bool ensure_callback() {
    // Registers the transaction callback once per backend; false without a waker.
    if (!g_waker.wake) return false;
    if (!callback_registered) {
        call([] { RegisterXactCallback(matviews_at_xact_end, nullptr); });
        callback_registered = true;
    }
    return true;
}

}  // namespace

void set_commit_waker(const CommitWaker& waker) {
    g_waker = waker;
}

void wake_scheduler_at_commit(bool definitions_changed) {
    if (!ensure_callback()) return;
    wake_pending = true;
    definitions_pending = definitions_pending || definitions_changed;
}

void request_scheduler_at_commit() {
    if (!ensure_callback()) return;
    scheduler_request_pending = true;
}

}  // namespace mv::pg
