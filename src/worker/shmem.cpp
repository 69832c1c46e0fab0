// Shared state of the background processes (see shmem.hpp). A spinlock guards every field but
// the change slots; the critical sections only copy values. Latches are set outside the lock.
// The change slots of watched views are lock-free (atomics only), since every commit that wrote
// a watched table touches them: a writer never waits for another writer or for the scheduler.
#include "worker/shmem.hpp"

#include "boundary/capture.hpp"
#include "boundary/wakeup.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
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
constexpr int kMaxJobs = 256;  // matviews.max_workers' maximum
// A scheduler registered this long ago that has neither attached nor been seen to stop is
// presumed lost (its launcher restarted and it died before attaching): another may start.
constexpr TimestampTz kStartingStale = 60 * USECS_PER_SEC;

struct DbSlot {
    Oid dboid;
    int scheduler_pid;
    Latch* scheduler_latch;
    bool starting;      // registered, not attached yet
    uint32 generation;  // of the latest registered scheduler; only it may attach
    TimestampTz starting_since;
    bool probed;
    bool installed;
    bool wanted;
    TimestampTz paused_until;
    bool stop_jobs;  // the scheduler was stopped for exclusive use: its jobs must end too
    uint32 definitions_version;
    uint32 wake_count;
    uint64 ticket;  // 0, or the turn it waits for a free job with (smallest goes first)
};

// A running job: which database's scheduler started it, and as which role.
struct JobEntry {
    Oid dboid;  // InvalidOid: free
    Oid owner;
};

// Changes to one watched relation committed since the scheduler last drained them. key: 0 free,
// 1 being recycled by the scheduler, relid + 2 in use.
struct ChangeSlot {
    pg_atomic_uint64 key;
    pg_atomic_uint64 count;     // statements
    pg_atomic_uint64 first_at;  // TimestampTz of the first commit counted, 0 unknown
};
constexpr int kChangeSlots = 256;  // per database: relations changed between two drains
constexpr uint64 kKeyFree = 0;
constexpr uint64 kKeyBusy = 1;

// The change slots of the database in dbs[i], and whether more relations changed than fit.
struct DbChanges {
    pg_atomic_uint32 overflow;
    ChangeSlot slots[kChangeSlots];
};

struct SharedState {
    slock_t mutex;
    int launcher_pid;
    Latch* launcher_latch;
    TimestampTz serving_since;  // set by the first launcher_attach, kept across launcher restarts
    uint64 next_ticket;
    DbSlot dbs[kMaxDatabases];
    JobEntry jobs[kMaxJobs];
    DbChanges changes[kMaxDatabases];  // by the index of the database's slot in dbs
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
        for (auto& db : shared->changes) {
            pg_atomic_init_u32(&db.overflow, 0);
            for (auto& c : db.slots) {
                pg_atomic_init_u64(&c.key, kKeyFree);
                pg_atomic_init_u64(&c.count, 0);
                pg_atomic_init_u64(&c.first_at, 0);
            }
        }
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
    // No writer of the database that had this slot is left (it was dropped): start clean.
    DbChanges& db = shared->changes[free_slot - shared->dbs];
    pg_atomic_write_u32(&db.overflow, 0);
    for (auto& c : db.slots) {
        pg_atomic_write_u64(&c.key, kKeyFree);
        pg_atomic_write_u64(&c.count, 0);
        pg_atomic_write_u64(&c.first_at, 0);
    }
    return free_slot;
}

// This backend's database's slot index, found once under the mutex (a connected backend's
// database keeps its slot); -1 when there is none and no free one.
int my_db_index() {
    static int index = -1;
    static Oid for_db = InvalidOid;
    // The launcher may have given the slot up (retain_databases) and another database taken it:
    // the cached index holds only while the slot still names this database.
    if (index >= 0 && for_db == MyDatabaseId &&
        *static_cast<volatile Oid*>(&shared->dbs[index].dboid) == MyDatabaseId)
        return index;
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(MyDatabaseId, true);
    index = s ? static_cast<int>(s - shared->dbs) : -1;
    SpinLockRelease(&shared->mutex);
    for_db = MyDatabaseId;
    return index;
}

int db_index(Oid dboid) {
    // Any database's slot index, under the mutex (the scheduler's side).
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, true);
    int index = s ? static_cast<int>(s - shared->dbs) : -1;
    SpinLockRelease(&shared->mutex);
    return index;
}

bool holds_changes(DbChanges& db) {
    if (pg_atomic_read_u32(&db.overflow) != 0) return true;
    for (auto& c : db.slots)
        if (pg_atomic_read_u64(&c.key) != kKeyFree) return true;
    return false;
}

uint32 slot_hash(Oid relid) {
    return (relid * 2654435761u) % kChangeSlots;
}

// What add_change found: no slot left, or the relation's count before this change.
enum class Added { full, first, more };

Added add_change(DbChanges& db, Oid relid, uint32 n, TimestampTz at) {
    // Finds or claims the relation's slot and counts n. After counting it checks the slot is
    // still the relation's: the scheduler may have recycled it in between, and then counts again
    // elsewhere (a change is counted twice, never lost).
    const uint64 key = static_cast<uint64>(relid) + 2;
    for (;;) {
        ChangeSlot* slot = nullptr;
        for (uint32 i = 0, h = slot_hash(relid); i < kChangeSlots && slot == nullptr; i++) {
            ChangeSlot& c = db.slots[(h + i) % kChangeSlots];
            uint64 k = pg_atomic_read_u64(&c.key);
            if (k == kKeyFree) {
                uint64 expected = kKeyFree;
                if (pg_atomic_compare_exchange_u64(&c.key, &expected, key))
                    k = key;
                else
                    k = expected;
            }
            if (k == key) slot = &c;
        }
        if (slot == nullptr) return Added::full;
        uint64 zero = 0;
        (void)pg_atomic_compare_exchange_u64(&slot->first_at, &zero, static_cast<uint64>(at));
        uint64 before = pg_atomic_fetch_add_u64(&slot->count, n);
        if (pg_atomic_read_u64(&slot->key) == key) return before == 0 ? Added::first : Added::more;
    }
}

void publish_now(Oid dboid, const Oid* relids, const uint32* counts, int n, bool overflow,
                 TimestampTz commit_time) {
    // The change publisher (boundary/capture.hpp), in a commit callback: count each relation in
    // its slot, then set the scheduler's latch. The latch pointer is read without the mutex: a
    // stale one (the scheduler just exited) only wakes a process for nothing, which latches
    // allow.
    if (shared == nullptr || dboid != MyDatabaseId) return;
    int index = my_db_index();
    if (index < 0) return;
    DbChanges& db = shared->changes[index];
    // The latch is set only by a commit that found a relation's count at zero: later ones are
    // drained with it (the scheduler drains every slot), so a busy table costs the scheduler
    // one wake-up per drain, not one per commit.
    bool wake = overflow;
    for (int i = 0; i < n && !overflow; i++) {
        switch (add_change(db, relids[i], counts[i], commit_time)) {
            case Added::full:
                overflow = wake = true;
                break;
            case Added::first:
                wake = true;
                break;
            case Added::more:
                break;
        }
    }
    if (overflow) pg_atomic_write_u32(&db.overflow, 1);
    if (!wake) return;
    Latch* latch = *static_cast<Latch* volatile*>(&shared->dbs[index].scheduler_latch);
    if (latch != nullptr) SetLatch(latch);
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
        s->wake_count++;
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
    pg::set_change_publisher(publish_now);
}

bool changes_pending(Oid dboid) {
    if (!shared) return false;
    int index = db_index(dboid);
    if (index < 0) return false;
    DbChanges& db = shared->changes[index];
    if (pg_atomic_read_u32(&db.overflow) != 0) return true;
    for (auto& c : db.slots)
        if (pg_atomic_read_u64(&c.count) != 0) return true;
    return false;
}

std::vector<Change> drain_changes(Oid dboid, bool* overflow) {
    // Takes every counted change: a slot that counted nothing since the last drain is recycled
    // (marked busy first, so no writer claims it while its last counts are taken).
    std::vector<Change> out;
    *overflow = false;
    if (!shared) return out;
    int index = db_index(dboid);
    if (index < 0) return out;
    DbChanges& db = shared->changes[index];
    *overflow = pg_atomic_exchange_u32(&db.overflow, 0) != 0;
    TimestampTz now = GetCurrentTimestamp();
    auto take = [&](uint64 key, ChangeSlot& c) {
        uint64 n = pg_atomic_exchange_u64(&c.count, 0);
        if (n == 0) return false;
        auto at = static_cast<TimestampTz>(pg_atomic_exchange_u64(&c.first_at, 0));
        out.push_back(Change{static_cast<Oid>(key - 2), n, at != 0 ? at : now});
        return true;
    };
    for (auto& c : db.slots) {
        uint64 key = pg_atomic_read_u64(&c.key);
        if (key == kKeyFree || key == kKeyBusy) continue;
        if (take(key, c)) continue;
        uint64 expected = key;
        if (!pg_atomic_compare_exchange_u64(&c.key, &expected, kKeyBusy)) continue;
        (void)take(key, c);
        pg_atomic_write_u64(&c.first_at, 0);
        pg_atomic_write_u64(&c.key, kKeyFree);
    }
    return out;
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
    TimestampTz now = GetCurrentTimestamp();
    for (const auto& s : copy) {
        if (s.dboid == InvalidOid) continue;
        bool starting = s.starting && now - s.starting_since < kStartingStale;
        out.push_back(DatabaseState{s.dboid, s.scheduler_pid, starting, s.probed, s.installed,
                                    s.wanted, s.paused_until});
    }
    return out;
}

void retain_databases(const std::vector<Oid>& existing) {
    // Frees slots of dropped databases and makes sure every database has one.
    SpinLockAcquire(&shared->mutex);
    for (auto& s : shared->dbs) {
        if (s.dboid == InvalidOid || s.scheduler_pid != 0 || s.starting) continue;
        // Changes counted and not drained yet: the database is newer than the launcher's list
        // (a dropped one has no writers left); its scheduler takes them.
        if (holds_changes(shared->changes[&s - shared->dbs])) continue;
        if (std::find(existing.begin(), existing.end(), s.dboid) == existing.end())
            memset(&s, 0, sizeof s);
    }
    for (Oid db : existing) (void)find_slot(db, true);
    SpinLockRelease(&shared->mutex);
}

void free_jobs_locked(Oid dboid) {
    // Forgets the job entries of a database whose scheduler is gone: its jobs still running
    // finish on their own, but no scheduler will release them. Caller holds the mutex.
    for (auto& j : shared->jobs)
        if (j.dboid == dboid) j = JobEntry{InvalidOid, InvalidOid};
}

uint32_t note_scheduler_starting(Oid dboid) {
    // A new generation; a scheduler of an older one that shows up late does not attach.
    SpinLockAcquire(&shared->mutex);
    uint32 gen = 0;
    if (DbSlot* s = find_slot(dboid, true)) {
        gen = ++s->generation;
        if (gen == 0) gen = ++s->generation;  // 0 means "none"
        s->starting = true;
        s->starting_since = GetCurrentTimestamp();
        s->wanted = false;  // the CREATE EXTENSION request is served
    }
    SpinLockRelease(&shared->mutex);
    return gen;
}

void note_scheduler_stopped(Oid dboid, uint32_t generation) {
    // The launcher saw the scheduler's process end (perhaps without detaching).
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    if (s && s->generation == generation) {
        s->starting = false;
        s->scheduler_pid = 0;
        s->scheduler_latch = nullptr;
        s->ticket = 0;
        free_jobs_locked(dboid);
    }
    SpinLockRelease(&shared->mutex);
}

bool scheduler_may_start(Oid dboid, uint32_t generation) {
    // The checks of scheduler_attach, before connecting to the database.
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    bool ok = s && s->generation == generation && s->scheduler_pid == 0 &&
              s->paused_until <= GetCurrentTimestamp();
    SpinLockRelease(&shared->mutex);
    return ok;
}

bool scheduler_attach(Oid dboid, uint32_t generation) {
    // Publishes the scheduler's pid and latch, if this generation is the one expected.
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    bool ok = s && s->generation == generation && s->scheduler_pid == 0 &&
              s->paused_until <= GetCurrentTimestamp();
    if (ok) {
        s->starting = false;
        s->scheduler_pid = MyProcPid;
        s->scheduler_latch = &MyProc->procLatch;
        s->stop_jobs = false;
        s->ticket = 0;
    }
    SpinLockRelease(&shared->mutex);
    return ok;
}

void scheduler_detach(Oid dboid, uint32_t generation, bool installed) {
    // Clears what this scheduler published and records what it found; a scheduler that never
    // attached only ends its generation's starting state.
    SpinLockAcquire(&shared->mutex);
    if (DbSlot* s = find_slot(dboid, true)) {
        if (s->generation == generation) {
            s->starting = false;
            if (s->scheduler_pid == MyProcPid || s->scheduler_pid == 0) {
                s->scheduler_pid = 0;
                s->scheduler_latch = nullptr;
                s->ticket = 0;
                free_jobs_locked(dboid);
            }
            s->probed = true;
            s->installed = installed;
        }
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

uint32_t wake_count(Oid dboid) {
    // The counter every commit-time wake-up bumps.
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    uint32 v = s ? s->wake_count : 0;
    SpinLockRelease(&shared->mutex);
    return v;
}

Reservation try_reserve_job(Oid dboid, Oid owner, int max_workers, int max_per_owner, int* entry) {
    // Counts the cluster's and the owner's jobs, checks the turn, then takes a free entry.
    SpinLockAcquire(&shared->mutex);
    DbSlot* me = find_slot(dboid, true);
    int total = 0, of_owner = 0, free_entry = -1;
    for (int i = 0; i < kMaxJobs; i++) {
        const JobEntry& j = shared->jobs[i];
        if (j.dboid == InvalidOid) {
            if (free_entry < 0) free_entry = i;
            continue;
        }
        total++;
        if (j.owner == owner) of_owner++;
    }
    // Another database waits with an older ticket than ours (or we have none): its turn.
    bool others_first = false;
    for (const auto& s : shared->dbs)
        if (&s != me && s.dboid != InvalidOid && s.ticket != 0 && s.scheduler_pid != 0 &&
            (me == nullptr || me->ticket == 0 || s.ticket < me->ticket))
            others_first = true;
    Reservation r;
    if (me == nullptr || free_entry < 0 || total >= max_workers || others_first) {
        r = Reservation::kNoSlot;
        if (me != nullptr && me->ticket == 0) me->ticket = ++shared->next_ticket;
    } else if (max_per_owner > 0 && of_owner >= max_per_owner) {
        r = Reservation::kOwnerBusy;
    } else {
        r = Reservation::kReserved;
        shared->jobs[free_entry] = JobEntry{dboid, owner};
        *entry = free_entry;
        me->ticket = 0;  // served: a further run queues behind the databases waiting
    }
    SpinLockRelease(&shared->mutex);
    return r;
}

void release_job(int entry) {
    // Frees the entry and wakes the schedulers waiting for one (outside the lock).
    if (entry < 0 || entry >= kMaxJobs) return;
    Latch* waiting[kMaxDatabases];
    int n = 0;
    SpinLockAcquire(&shared->mutex);
    shared->jobs[entry] = JobEntry{InvalidOid, InvalidOid};
    for (const auto& s : shared->dbs)
        if (s.ticket != 0 && s.scheduler_latch != nullptr) waiting[n++] = s.scheduler_latch;
    SpinLockRelease(&shared->mutex);
    for (int i = 0; i < n; i++) SetLatch(waiting[i]);
}

void stop_waiting(Oid dboid) {
    // Hands the ticket back, so it holds back nobody; wakes the next in line if it had the turn.
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    bool had = s && s->ticket != 0;
    if (had) s->ticket = 0;
    Latch* waiting[kMaxDatabases];
    int n = 0;
    if (had)
        for (const auto& o : shared->dbs)
            if (o.ticket != 0 && o.scheduler_latch != nullptr) waiting[n++] = o.scheduler_latch;
    SpinLockRelease(&shared->mutex);
    for (int i = 0; i < n; i++) SetLatch(waiting[i]);
}

int running_jobs() {
    // The cluster-wide count of jobs.
    SpinLockAcquire(&shared->mutex);
    int n = 0;
    for (const auto& j : shared->jobs) n += j.dboid != InvalidOid;
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
    bool running =
        s && (s->scheduler_pid != 0 ||
              (s->starting && GetCurrentTimestamp() - s->starting_since < kStartingStale));
    SpinLockRelease(&shared->mutex);
    return running;
}

void stop_scheduler(Oid dboid, int timeout_ms) {
    // Pauses the slot, signals the scheduler, and polls until it is gone. A scheduler still
    // starting checks the pause when it attaches, under this lock, so none attaches after it is
    // set: a starting one exits without serving (and without connecting, if it has not yet),
    // and is waited for like a running one.
    if (!shared) return;
    SpinLockAcquire(&shared->mutex);
    DbSlot* s = find_slot(dboid, false);
    int pid = 0;
    bool starting = false;
    if (s) {
        s->paused_until = GetCurrentTimestamp() + 10 * USECS_PER_SEC;
        s->stop_jobs = true;
        pid = s->scheduler_pid;
        starting = s->starting;
    }
    SpinLockRelease(&shared->mutex);
    if (pid == 0 && !starting) return;
    if (pid != 0) kill(pid, SIGTERM);
    // A latch wait, not a sleep, so that the caller's cancel and statement_timeout still apply.
    for (int waited = 0; waited < timeout_ms && scheduler_running(dboid); waited += 10) {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

}  // namespace mv::worker
