// Change capture in the writer's backend (see capture.hpp). The notes live in a fixed array, each
// with the subtransaction nesting level that made it: a subtransaction's commit hands its notes
// to its parent, its abort drops them, the top-level commit publishes what is left.
#include "boundary/capture.hpp"

extern "C" {
#include "access/xact.h"
}

namespace mv::pg {

namespace {

constexpr int kMaxNotes = 256;

struct Note {
    Oid relid;
    uint32 count;
    int level;
};

ChangePublisher g_publisher = nullptr;
Note g_notes[kMaxNotes];
int g_count = 0;
// More relations changed than kMaxNotes: the lowest nesting level that overflowed (0: none).
int g_overflow_level = 0;
bool g_registered = false;

// Static, so that raising it leaves nothing to destroy.
const ErrorInfo kPrepareRefused{
    "0A000", "cannot PREPARE a transaction that has written to a table matviews watches",
    "A watched view learns of a change when the writing transaction commits in its own session; "
    "COMMIT PREPARED may run in another one.",
    "Write to watched tables outside two-phase transactions, or unwatch the views that read them "
    "(matviews.unwatch).",
    ""};

void forget() {
    g_count = 0;
    g_overflow_level = 0;
}

extern "C" void matviews_capture_xact(XactEvent event, void*) {
    // Commit: publish, then forget. Abort: forget. PREPARE: refused while notes are pending,
    // since COMMIT PREPARED may run in another session that never sees them.
    switch (event) {
        case XACT_EVENT_COMMIT:
            if ((g_count > 0 || g_overflow_level > 0) && g_publisher != nullptr) {
                Oid relids[kMaxNotes];
                uint32 counts[kMaxNotes];
                for (int i = 0; i < g_count; i++) {
                    relids[i] = g_notes[i].relid;
                    counts[i] = g_notes[i].count;
                }
                g_publisher(MyDatabaseId, relids, counts, g_count, g_overflow_level > 0,
                            GetCurrentTransactionStopTimestamp());
            }
            forget();
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
        case XACT_EVENT_PREPARE:
            forget();
            break;
        case XACT_EVENT_PRE_PREPARE:
            if (g_count > 0 || g_overflow_level > 0) {
                forget();
                // A plain C frame: nothing of ours with a destructor is on the stack.
                raise_error(kPrepareRefused);
            }
            break;
        default:
            break;
    }
}

extern "C" void matviews_capture_subxact(SubXactEvent event, SubTransactionId, SubTransactionId,
                                         void*) {
    // Called while the subtransaction is still the current one.
    int level = GetCurrentTransactionNestLevel();
    if (event == SUBXACT_EVENT_COMMIT_SUB) {
        // The parent takes the notes over, one per relation: a savepoint per statement (many
        // drivers make one) must not fill the array with copies.
        int kept = 0;
        for (int i = 0; i < g_count; i++) {
            Note n = g_notes[i];
            if (n.level >= level) n.level = level - 1;
            int j = 0;
            while (j < kept && !(g_notes[j].relid == n.relid && g_notes[j].level == n.level)) j++;
            if (j < kept)
                g_notes[j].count += n.count;
            else
                g_notes[kept++] = n;
        }
        g_count = kept;
        if (g_overflow_level >= level) g_overflow_level = level - 1;
    } else if (event == SUBXACT_EVENT_ABORT_SUB) {
        int kept = 0;
        for (int i = 0; i < g_count; i++)
            if (g_notes[i].level < level) g_notes[kept++] = g_notes[i];
        g_count = kept;
        if (g_overflow_level >= level) g_overflow_level = 0;
    }
}

}  // namespace

void set_change_publisher(ChangePublisher publisher) {
    g_publisher = publisher;
}

void note_change(Oid relid) {
    if (g_publisher == nullptr) return;  // no shared memory: the scheduler's start covers it
    if (!g_registered) {
        call([] {
            RegisterXactCallback(matviews_capture_xact, nullptr);
            RegisterSubXactCallback(matviews_capture_subxact, nullptr);
        });
        g_registered = true;
    }
    int level = GetCurrentTransactionNestLevel();
    for (int i = g_count - 1; i >= 0; i--) {
        if (g_notes[i].relid == relid && g_notes[i].level == level) {
            g_notes[i].count++;
            return;
        }
    }
    if (g_count < kMaxNotes) {
        g_notes[g_count++] = Note{relid, 1, level};
        return;
    }
    if (g_overflow_level == 0 || level < g_overflow_level) g_overflow_level = level;
}

}  // namespace mv::pg
