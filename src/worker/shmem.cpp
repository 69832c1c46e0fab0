// Shared state of the background processes (see shmem.hpp). A spinlock guards every field; the
// critical sections only copy values. Latches are set outside the lock.
#include "worker/shmem.hpp"

#include "boundary/wakeup.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace mv::worker {

namespace {

constexpr int kMaxDatabases = 128;

struct DbSlot {
    Oid dboid;
    int scheduler_pid;
    Latch* scheduler_latch;
    bool probed;
    bool installed;
    bool wanted;
    TimestampTz paused_until;
    bool stop_jobs;  // the scheduler was stopped for exclusive use: its jobs must end too
    uint32 definitions_version;
    int jobs;  // job workers this database's scheduler has running
};

struct SharedState {
    slock_t mutex;
    int launcher_pid;
    Latch* launcher_latch;
    TimestampTz serving_since;  // set by the first launcher_attach, kept across launcher restarts
    DbSlot dbs[kMaxDatabases];
};

SharedState* shared = nullptr;
shmem_request_hook_type prev_request_hook = nullptr;
shmem_startup_hook_type prev_startup_hook = nullptr;

extern "C" void matviews_request_shmem() {
    // shmem_request_hook: reserve our struct.
    if (prev_request_hook) prev_request_hook();
    RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
}

extern "C" void matviews_startup_shmem() {
    // shmem_startup_hook: create or attach our struct.
    if (prev_startup_hook) prev_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    shared = static_cast<SharedState*>(ShmemInitStruct("matviews", sizeof(SharedState), &found));
    if (!found) {
        memset(shared, 0, sizeof(SharedState));
        SpinLockInit(&shared->mutex);
    }
    LWLockRelease(AddinShmemInitLock);
}

DbSlot* find_slot(Oid dboid, bool create) {
    // The slot of dboid; with create, a free one is claimed. Caller holds the mutex.
    DbSlot* free_slot = nullptr;
    for (auto& s : shared->dbs) {
        if (s.dboid == dboid) return &s;
        if (s.dboid == InvalidOid && free_slot == nullptr) free_slot = &s;
    }
    if (!create || free_slot == nullptr) return nullptr;
    memset(free_slot, 0, sizeof(DbSlot));
    free_slot->dboid = dboid;
    return free_slot;
}

void wake_now(Oid dboid, bool definitions_changed) {
    // The commit-time wake-up (boundary/wakeup.hpp): bump the definitions version and set the
    // scheduler's latch.
    if (shared == nullptr) return;
    Latch* latch = nullptr;
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    if (s != nullptr) {
        if (definitions_changed) s->definitions_version++;
        latch = s->scheduler_latch;
    }
    SpinLockRelease(&shared->mutex);
    if (latch != nullptr) SetLatch(latch);
}

}  // namespace

void install_shmem_hooks() {
    // Chains our hooks in front of any others.
    prev_request_hook = shmem_request_hook;
    shmem_request_hook = matviews_request_shmem;
    prev_startup_hook = shmem_startup_hook;
    shmem_startup_hook = matviews_startup_shmem;
    pg::set_commit_waker(pg::CommitWaker{wake_now, request_scheduler});
}

bool preloaded() {
    // The startup hook ran: the library was preloaded.
    return shared != nullptr;
}

bool launcher_running() {
    // A launcher has attached and not detached.
    if (!shared) return false;
    SpinLockAcquire(&shared->mutex);
    bool running = shared->launcher_pid != 0;
    SpinLockRelease(&shared->mutex);
    return running;
}

int64_t serving_since() {
    // The first launcher's start time; 0 without shared state.
    if (!shared) return 0;
    SpinLockAcquire(&shared->mutex);
    TimestampTz t = shared->serving_since;
    SpinLockRelease(&shared->mutex);
    return t;
}

void launcher_attach() {
    // Publishes the launcher's pid and latch; the first call also stamps serving_since.
    TimestampTz now = GetCurrentTimestamp();
    SpinLockAcquire(&shared->mutex);
    if (shared->serving_since == 0) shared->serving_since = now;
    shared->launcher_pid = MyProcPid;
    shared->launcher_latch = &MyProc->procLatch;
    SpinLockRelease(&shared->mutex);
}

void launcher_detach() {
    // Clears the launcher's pid and latch, if they are still ours.
    SpinLockAcquire(&shared->mutex);
    if (shared->launcher_pid == MyProcPid) {
        shared->launcher_pid = 0;
        shared->launcher_latch = nullptr;
    }
    SpinLockRelease(&shared->mutex);
}

std::vector<DatabaseState> databases() {
    // Copies the slots out under the lock, then builds the vector.
    DbSlot copy[kMaxDatabases];
    SpinLockAcquire(&shared->mutex);
    memcpy(copy, shared->dbs, sizeof copy);
    SpinLockRelease(&shared->mutex);
    std::vector<DatabaseState> out;
    for (const auto& s : copy) {
        if (s.dboid == InvalidOid) continue;
        out.push_back(DatabaseState{s.dboid, s.scheduler_pid, s.probed, s.installed, s.wanted,
                                    s.paused_until});
    }
    return out;
}

void retain_databases(const std::vector<Oid>& existing) {
    // Frees slots of dropped databases and makes sure every database has one.
    SpinLockAcquire(&shared->mutex);
    for (auto& s : shared->dbs) {
        if (s.dboid == InvalidOid || s.scheduler_pid != 0) continue;
        if (std::find(existing.begin(), existing.end(), s.dboid) == existing.end())
            memset(&s, 0, sizeof s);
    }
    for (Oid db : existing) (void)find_slot(db, true);
    SpinLockRelease(&shared->mutex);
}

void note_scheduler_stopped(Oid dboid, int pid) {
    // The launcher saw the scheduler's process end (perhaps without detaching).
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    if (s && s->scheduler_pid == pid) {
        s->scheduler_pid = 0;
        s->scheduler_latch = nullptr;
        s->jobs = 0;
    }
    SpinLockRelease(&shared->mutex);
}

void note_scheduler_started(Oid dboid, int pid) {
    // The launcher registered a scheduler: the CREATE EXTENSION request is served.
    SpinLockAcquire(&shared->mutex);
    if (DbSlot* s = find_slot(dboid, true)) {
        s->scheduler_pid = pid;
        s->wanted = false;
    }
    SpinLockRelease(&shared->mutex);
}

void scheduler_attach(Oid dboid) {
    // Publishes the scheduler's pid and latch.
    SpinLockAcquire(&shared->mutex);
    if (DbSlot* s = find_slot(dboid, true)) {
        s->scheduler_pid = MyProcPid;
        s->scheduler_latch = &MyProc->procLatch;
        s->stop_jobs = false;
    }
    SpinLockRelease(&shared->mutex);
}

void scheduler_detach(Oid dboid, bool installed) {
    // Clears the scheduler's pid and latch and records what it found.
    SpinLockAcquire(&shared->mutex);
    if (DbSlot* s = find_slot(dboid, true)) {
        if (s->scheduler_pid == MyProcPid || s->scheduler_pid == 0) {
            s->scheduler_pid = 0;
            s->scheduler_latch = nullptr;
            s->jobs = 0;  // jobs still running finish on their own; they no longer count
        }
        s->probed = true;
        s->installed = installed;
    }
    SpinLockRelease(&shared->mutex);
}

uint32_t definitions_version(Oid dboid) {
    // The counter that commits changing definitions bump.
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    uint32 v = s ? s->definitions_version : 0;
    SpinLockRelease(&shared->mutex);
    return v;
}

int total_jobs_locked() {
    // Sum of running jobs over all databases. Caller holds the mutex.
    int n = 0;
    for (const auto& s : shared->dbs) n += s.jobs;
    return n;
}

bool try_reserve_job(Oid dboid, int max_workers) {
    // Counts one more job for dboid while the cluster-wide total is below max_workers.
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, true);
    bool ok = s != nullptr && total_jobs_locked() < max_workers;
    if (ok) s->jobs++;
    SpinLockRelease(&shared->mutex);
    return ok;
}

void release_job(Oid dboid) {
    // Counts one job fewer for dboid.
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    if (s && s->jobs > 0) s->jobs--;
    SpinLockRelease(&shared->mutex);
}

int running_jobs() {
    // The cluster-wide count of jobs.
    SpinLockAcquire(&shared->mutex);
    int n = total_jobs_locked();
    SpinLockRelease(&shared->mutex);
    return n;
}

void request_scheduler(Oid dboid) {
    // Marks the database wanted and wakes the launcher.
    if (!shared) return;
    SpinLockAcquire(&shared->mutex);
    if (DbSlot* s = find_slot(dboid, true)) {
        s->wanted = true;
        s->paused_until = 0;
    }
    Latch* latch = shared->launcher_latch;
    SpinLockRelease(&shared->mutex);
    if (latch) SetLatch(latch);
}

bool jobs_must_stop(Oid dboid) {
    // Whether stop_scheduler asked for this database since its scheduler attached.
    if (!shared) return false;
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    bool stop = s && s->stop_jobs;
    SpinLockRelease(&shared->mutex);
    return stop;
}

bool scheduler_running(Oid dboid) {
    // A scheduler has attached for dboid and not detached.
    if (!shared) return false;
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    bool running = s && s->scheduler_pid != 0;
    SpinLockRelease(&shared->mutex);
    return running;
}

void stop_scheduler(Oid dboid, int timeout_ms) {
    // Pauses the slot, signals the scheduler, and polls until it is gone.
    if (!shared) return;
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    int pid = 0;
    if (s) {
        s->paused_until = GetCurrentTimestamp() + 10 * USECS_PER_SEC;
        s->stop_jobs = true;
        pid = s->scheduler_pid;
    }
    SpinLockRelease(&shared->mutex);
    if (pid == 0) return;
    kill(pid, SIGTERM);
    // A latch wait, not a sleep, so that the caller's cancel and statement_timeout still apply.
    for (int waited = 0; waited < timeout_ms && scheduler_running(dboid); waited += 10) {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

}  // namespace mv::worker
