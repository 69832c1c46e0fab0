// The launcher: the one cluster-wide matviews process. Started by the postmaster once recovery has
// finished (never on a hot standby; after a promotion), it keeps one scheduler running for every
// database that has matviews installed, with no configuration: it probes each database once,
// starts a scheduler at once when CREATE EXTENSION asks for it, and restarts schedulers that end.
// It waits on its latch, rereads its configuration on SIGHUP, ends on SIGTERM and exits with the
// postmaster.
#include "worker/launcher.hpp"

#include "module.hpp"
#include "worker/bgw.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_database.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace mv::worker {

namespace {

constexpr const char* kLauncherName = "matviews launcher";
constexpr size_t kMaxProbesAtOnce = 4;

extern "C" void matviews_launcher_exit(int, Datum) {
    // Exit callback: unpublish the launcher.
    launcher_detach();
}

std::vector<Oid> list_databases() {
    // Databases a scheduler can serve: connectable, not templates. Read with a heap scan, as the
    // autovacuum launcher does, since the launcher is connected to no database.
    std::vector<Oid> out;
    constexpr int kMax = 4096;
    Oid found[kMax];
    int n = pg::call([&] {
        int count = 0;
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        Relation rel = table_open(DatabaseRelationId, AccessShareLock);
        TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
        HeapTuple tup;
        while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL && count < kMax) {
            Form_pg_database db = (Form_pg_database)GETSTRUCT(tup);
            if (db->datallowconn && !db->datistemplate) found[count++] = db->oid;
        }
        table_endscan(scan);
        table_close(rel, AccessShareLock);
        PopActiveSnapshot();
        CommitTransactionCommand();
        return count;
    });
    out.assign(found, found + n);
    return out;
}

// A registered scheduler: its handle (palloc'd by RegisterDynamicBackgroundWorker, freed when
// it stops) and the generation it attaches with.
struct Registered {
    BackgroundWorkerHandle* handle;
    uint32_t generation;
};

BackgroundWorkerHandle* start_scheduler(Oid dboid, uint32_t generation) {
    // Registers a dynamic scheduler worker for the database; nullptr when no slot is free. The
    // generation travels in bgw_extra: only the latest registered scheduler may attach.
    BackgroundWorker w = describe_worker(
        "matviews_scheduler_main", fmt::format("matviews scheduler for database {}", dboid),
        "matviews scheduler", BGW_NEVER_RESTART, ObjectIdGetDatum(dboid), MyProcPid);
    static_assert(sizeof(generation) <= BGW_EXTRALEN, "the generation must fit in bgw_extra");
    std::memcpy(w.bgw_extra, &generation, sizeof generation);
    return start_dynamic_worker(w);
}

void launcher_loop(Datum) {
    // Reap ended schedulers, list databases, start what is missing, sleep.
    setup_signals();
    pg::call([] { BackgroundWorkerInitializeConnection(nullptr, nullptr, 0); });
    set_application_name(kLauncherName);
    report_activity("");
    launcher_attach();
    pg::call([] { before_shmem_exit(matviews_launcher_exit, 0); });
    pg::log(pg::LogLevel::log, "matviews launcher started");

    std::map<Oid, Registered> schedulers;
    bool warned_no_slot = false;
    for (;;) {
        for (auto it = schedulers.begin(); it != schedulers.end();) {
            pid_t pid = 0;
            BackgroundWorkerHandle* h = it->second.handle;
            BgwHandleStatus st = pg::call([&] { return GetBackgroundWorkerPid(h, &pid); });
            if (st == BGWH_STOPPED) {
                note_scheduler_stopped(it->first, it->second.generation);
                pg::call([&] { pfree(h); });
                it = schedulers.erase(it);
            } else {
                ++it;
            }
        }
        retain_databases(list_databases());
        TimestampTz now = GetCurrentTimestamp();
        size_t probes = 0;
        for (const auto& db : databases()) {
            // A scheduler registered by an earlier launcher and still starting counts as one.
            if (schedulers.count(db.dboid) || db.scheduler_pid != 0 || db.starting) continue;
            if (db.paused_until > now) continue;
            bool needed = !db.probed || db.wanted || db.installed;
            if (!needed) continue;
            if (!db.probed && ++probes > kMaxProbesAtOnce) continue;
            uint32_t generation = note_scheduler_starting(db.dboid);
            BackgroundWorkerHandle* h = start_scheduler(db.dboid, generation);
            if (h == nullptr) {
                note_scheduler_stopped(db.dboid, generation);
                if (!warned_no_slot)
                    pg::log(
                        pg::LogLevel::warning,
                        "matviews launcher: no background worker slot free for a scheduler; raise "
                        "max_worker_processes");
                warned_no_slot = true;
                break;
            }
            warned_no_slot = false;
            schedulers[db.dboid] = Registered{h, generation};
        }
        wait_latch(settings.launcher_naptime_ms);
        if (reload_config_if_requested())
            pg::log(pg::LogLevel::log, "matviews launcher: configuration reloaded");
    }
}

}  // namespace

void register_launcher() {
    // Registers the launcher with the postmaster; it restarts it 5 s after it ends.
    BackgroundWorker w =
        describe_worker("matviews_launcher_main", kLauncherName, kLauncherName, 5, (Datum)0, 0);
    pg::call([&] { RegisterBackgroundWorker(&w); });
}

}  // namespace mv::worker

void matviews_launcher_main(Datum arg) {
    // The launcher's entry point, under the worker guard.
    mv::pg::guard_worker(mv::worker::launcher_loop, arg);
}
