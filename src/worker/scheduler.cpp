// The scheduler: one per database with matviews installed, started by the launcher. It feeds the
// scheduling core (core/scheduler.hpp) with the definitions' schedules and the queued runs, lets
// it decide what is due, and starts each run as a job worker connected as the view's owner. It
// wakes on its latch: commits that enqueue or change schedules, job workers that end, SIGHUP.
// At start it marks runs left `running` by dead processes as failed. It exits when the
// extension is dropped (or the database needs to be alone, see hooks.cpp).
#include "worker/scheduler.hpp"

#include "boundary/scopes.hpp"
#include "boundary/timezone.hpp"
#include "boundary/xact.hpp"
#include "catalog/store.hpp"
#include "core/scheduler.hpp"
#include "module.hpp"
#include "worker/bgw.hpp"
#include "worker/jobs.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
}

namespace mv::worker {

namespace {

Oid g_database = InvalidOid;
bool g_installed = true;

void log_error(const Error& e) {
    // A WARNING with the error's fields, for errors the loop survives.
    const ErrorInfo& i = e.info();
    pg::log(pg::LogLevel::warning,
            fmt::format("matviews scheduler: {} (SQLSTATE {}){}{}", i.message, i.sqlstate,
                        i.detail.empty() ? "" : "; " + i.detail,
                        i.context.empty() ? "" : "; context: " + i.context));
}

class PgClock final : public sched::Clock {
  public:
    TimePoint now() override { return pg::now(); }
};

struct RunningJob {
    BackgroundWorkerHandle* handle;
    sched::ViewId view_id;
};

// The running jobs by run id (owned by the SchedulerProcess), for matviews_scheduler_exit.
const std::map<int64_t, RunningJob>* g_running = nullptr;

extern "C" void matviews_scheduler_exit(int, Datum) {
    // Detaches from shared memory; when the database is needed alone (DROP DATABASE and
    // friends), first asks the postmaster to terminate the jobs, which are connected to it too.
    // TerminateBackgroundWorker only sets a flag and signals the postmaster: it cannot raise.
    if (g_running && jobs_must_stop(g_database))
        for (const auto& entry : *g_running) TerminateBackgroundWorker(entry.second.handle);
    scheduler_detach(g_database, g_installed);
}

// Where a run stands after its job worker ended.
struct Outcome {
    bool success;
    TimePoint finished_at;
};

Json error_object(const std::string& sqlstate, const std::string& message,
                  const std::string& hint) {
    // The runs.error of a run the scheduler itself fails.
    Json e = Json::object();
    e.set("message", message);
    e.set("sqlstate", sqlstate);
    e.set("detail", Json());
    e.set("hint", hint.empty() ? Json() : Json(hint));
    return e;
}

// Starts runs as job workers; the scheduling core calls launch() from tick().
class JobLauncher final : public sched::Launcher {
  public:
    std::map<int64_t, RunningJob> running;                 // by run id
    std::vector<std::pair<sched::ViewId, Outcome>> ended;  // failed before a worker started

    bool launch(const sched::Launch& l) override {
        // Reserve a slot, make sure a queued run row exists, resolve the owner, start the worker.
        if (!try_reserve_job(g_database, settings.max_workers)) return false;
        bool started = false;
        try {
            started = start(l);
        } catch (const Error& e) {
            pg::log(pg::LogLevel::warning,
                    fmt::format("matviews scheduler: could not start a run of {}: {}", l.view,
                                e.what()));
        }
        if (!started) release_job(g_database);
        return started;
    }

  private:
    bool start(const sched::Launch& l) {
        // One transaction: the run row and the owner; then the worker.
        int64_t run_id = 0;
        JobArgs args{};
        args.database = g_database;
        bool resolved = false;
        bool inserted = false;
        pg::in_transaction([&](pg::Spi& spi) {
            catalog::Store store(spi);
            // Not worth a WAL flush on the way to starting a job: recover() handles a run a
            // crash would lose, and the job's own commits flush.
            store.relax_commit();
            if (l.run_id) {
                run_id = *l.run_id;
            } else {
                auto id = store.insert_scheduled_run(l.view_id, l.due, sched::to_string(l.kind),
                                                     l.attempt);
                if (!id) return;  // the definition is gone; the next reload removes it
                run_id = *id;
                inserted = true;
            }
            auto who = store.job_identity(run_id, l.kind != sched::RunKind::kQueued);
            if (!who) {
                store.fail_run(
                    run_id,
                    error_object(sqlstate::undefined_table,
                                 fmt::format("materialized view {} does not exist", l.view),
                                 l.kind == sched::RunKind::kQueued
                                     ? std::string("It was dropped, or changed hands, after the "
                                                   "run was queued.")
                                     : fmt::format("Recreate the view, or stop its schedule with "
                                                   "matviews.unschedule({0}) or "
                                                   "matviews.delete({0}).",
                                                   pg::quote_literal(l.view))));
                return;
            }
            args.role = who->owner;
            args.connect_as_role = who->can_connect;
            args.run_id = run_id;
            resolved = true;
        });
        if (run_id == 0) return false;
        if (!resolved) {
            ended.emplace_back(l.view_id, Outcome{false, pg::now()});
            running.erase(run_id);
            release_job(g_database);
            return true;  // the core sees it start and, right after, fail
        }
        BackgroundWorkerHandle* h = start_job(args);
        if (h == nullptr) {
            if (inserted)
                pg::in_transaction([&](pg::Spi& spi) { catalog::Store(spi).delete_run(run_id); });
            return false;
        }
        running[run_id] = RunningJob{h, l.view_id};
        return true;
    }
};

class SchedulerProcess {
  public:
    SchedulerProcess()
        : core_(
              clock_, launcher_, options(),
              pg::time_zone(settings.timezone ? settings.timezone : "UTC"),
              seeded_random(static_cast<uint64_t>(MyProcPid) ^ static_cast<uint64_t>(pg::now()))) {
        // Publishes the running jobs to matviews_scheduler_exit for as long as this object lives.
        g_running = &launcher_.running;
    }
    ~SchedulerProcess() { g_running = nullptr; }
    SchedulerProcess(const SchedulerProcess&) = delete;
    SchedulerProcess& operator=(const SchedulerProcess&) = delete;

    // The main loop.
    void run() {
        pg::in_transaction([&](pg::Spi& spi) {
            catalog::Store store(spi);
            recover(store);
        });
        uint32_t seen_version = definitions_version(g_database) - 1;
        TimePoint last_reload = 0, last_prune = 0, last_recover = pg::now();
        for (;;) {
            if (reload_config_if_requested()) {
                core_.set_max_workers(settings.max_workers);
                core_.set_time_zone(pg::time_zone(settings.timezone ? settings.timezone : "UTC"));
                last_prune = 0;  // a new runs_retention applies at once
                pg::log(pg::LogLevel::log, "matviews scheduler: configuration reloaded");
            }
            bool dropped = false;
            try {
                pg::in_transaction([&](pg::Spi& spi) {
                    catalog::Store store(spi);
                    if (!store.extension_installed()) {
                        dropped = true;
                        return;
                    }
                    reap(store);
                    TimePoint now = pg::now();
                    uint32_t version = definitions_version(g_database);
                    if (version != seen_version || now - last_reload > 60 * kSecond) {
                        load_definitions(store);
                        seen_version = version;
                        last_reload = now;
                    }
                    load_queued(store);
                    if (settings.runs_retention_s > 0 && now - last_prune >= prune_every()) {
                        store.prune_runs(settings.runs_retention_s);
                        last_prune = now;
                    }
                    if (now - last_recover > 60 * kSecond) {
                        recover(store);
                        last_recover = now;
                    }
                });
            } catch (const Error& e) {
                log_error(e);
            }
            if (dropped) {
                g_installed = false;
                pg::log(pg::LogLevel::log, "matviews scheduler: extension dropped, exiting");
                return;
            }
            Duration nap = core_.tick();
            for (const auto& [view_id, outcome] : launcher_.ended)
                core_.finished(view_id, outcome.success, outcome.finished_at);
            bool again = !launcher_.ended.empty();
            launcher_.ended.clear();
            if (again) continue;
            TimePoint wake_at = pg::now() + nap;  // absolute: the write below must not delay it
            write_next_run_times();
            Duration left = std::max<Duration>(0, wake_at - pg::now());
            long nap_ms = static_cast<long>((left + kMillisecond - 1) / kMillisecond);
            wait_latch(std::max(1L, std::min<long>(nap_ms, settings.scheduler_naptime_ms)));
        }
    }

  private:
    static sched::SchedulerOptions options() {
        // The core's limits from the settings.
        sched::SchedulerOptions o;
        o.max_workers = settings.max_workers;
        o.max_nap = 60 * kSecond;
        o.launch_retry_nap = 100 * kMillisecond;
        return o;
    }

    static Duration prune_every() {
        // How often finished runs are pruned: as often as runs_retention, between 1 s and 1 min.
        Duration retention = static_cast<Duration>(settings.runs_retention_s) * kSecond;
        return std::clamp<Duration>(retention, kSecond, 60 * kSecond);
    }

    void recover(catalog::Store& store) {
        // Runs left running by processes that are gone: failed, "server restarted" when they
        // started before this server began serving (it restarted, crashed or was promoted since),
        // else "the process running it ended". At start, then about once a minute, for jobs
        // whose scheduler ended before they did.
        auto runs = store.interrupted_runs(serving_since());
        for (const auto& run : runs) {
            Json error = error_object(
                "57P01", run.restarted ? "server restarted" : "the process running it ended",
                "The view was left as it was before the run; run it again if needed.");
            error.set("detail", "The run was in progress when its process ended.");
            store.fail_run(run.id, error);
        }
        if (!runs.empty())
            pg::log(pg::LogLevel::log,
                    fmt::format("matviews scheduler: marked {} interrupted run(s) failed",
                                runs.size()));
    }

    void reap(catalog::Store& store) {
        // Job workers that ended: read their run's outcome and tell the core.
        for (auto it = launcher_.running.begin(); it != launcher_.running.end();) {
            pid_t pid = 0;
            BackgroundWorkerHandle* h = it->second.handle;
            BgwHandleStatus st = pg::call([&] { return GetBackgroundWorkerPid(h, &pid); });
            if (st != BGWH_STOPPED) {
                ++it;
                continue;
            }
            int64_t run_id = it->first;
            auto outcome = store.run_outcome(run_id);
            bool success = false;
            TimePoint finished = pg::now();
            if (outcome) {
                const std::string& status = outcome->first;
                finished = outcome->second;
                success = status == "success" || status == "skipped";
                if (status == "queued" || status == "running") {
                    store.fail_run(run_id,
                                   error_object("57P01",
                                                status == "queued"
                                                    ? "the job worker ended before starting the run"
                                                    : "the job worker was terminated",
                                                "The view was left as it was before the run."));
                    finished = pg::now();
                }
            }
            core_.finished(it->second.view_id, success, finished);
            release_job(g_database);
            it = launcher_.running.erase(it);
        }
    }

    void load_definitions(catalog::Store& store) {
        // Every scheduled definition, with its run history, into the core. A row that cannot be
        // read is logged and skipped; the others still load.
        std::set<sched::ViewId> seen;
        for (const auto& row : store.scheduled_definitions()) {
            sched::ViewConfig c;
            c.id = row.id;
            c.view = row.view;
            try {
                c.schedule = parse_schedule(row.schedule);
            } catch (const Error& e) {
                pg::log(pg::LogLevel::warning,
                        fmt::format("matviews scheduler: {} has an invalid schedule: {}", c.view,
                                    e.what()));
                continue;
            }
            c.enabled = row.enabled;
            if (const Json* m = row.options.find("max_retries"); m && m->is_int())
                c.retry.max_retries = static_cast<int>(m->as_int());
            if (const Json* d = row.options.find("retry_delay")) {
                if (d->is_int())
                    c.retry.base_delay = d->as_int() * kSecond;
                else if (d->is_string())
                    c.retry.base_delay = store.interval_us(d->as_string());
            }
            c.consecutive_failures = row.consecutive_failures;
            if (row.last_started) c.history.last_started = *row.last_started;
            if (row.last_finished) c.history.last_finished = *row.last_finished;
            core_.upsert(c);
            seen.insert(c.id);
        }
        for (sched::ViewId id : scheduled_) {
            if (!seen.count(id)) {
                for (sched::RunId dropped : core_.remove(id)) (void)dropped;
                written_next_.erase(id);
            }
        }
        scheduled_ = std::move(seen);
    }

    void load_queued(catalog::Store& store) {
        // Queued runs the core does not know yet, by view: the definition, else the relation.
        for (const auto& q : store.queued_runs()) {
            if (launcher_.running.count(q.id)) continue;
            sched::ViewId view_id;
            if (q.definition_id)
                view_id = *q.definition_id;
            else if (q.relid != InvalidOid)
                view_id = -static_cast<int64_t>(q.relid);
            else
                view_id = -(int64_t(1) << 40) - q.id;  // the view is gone: the run fails on its own
            core_.enqueue(view_id, q.view, q.id, q.due);
        }
    }

    void write_next_run_times() {
        // definitions.next_run_at for managed views whose next due time changed.
        std::vector<std::pair<sched::ViewId, std::optional<TimePoint>>> changes;
        for (const auto& [id, job] : core_.jobs()) {
            if (!scheduled_.count(id)) continue;
            std::optional<TimePoint> next = job.next_due;
            auto it = written_next_.find(id);
            if (it != written_next_.end() && it->second == next) continue;
            changes.emplace_back(id, next);
        }
        if (changes.empty()) return;
        try {
            pg::in_transaction([&](pg::Spi& spi) {
                catalog::Store store(spi);
                store.relax_commit();  // display only
                store.write_next_run_times(changes);
            });
            for (const auto& [id, next] : changes) written_next_[id] = next;
        } catch (const Error& e) {
            log_error(e);
        }
    }

    PgClock clock_;
    JobLauncher launcher_;
    sched::Scheduler core_;
    std::set<sched::ViewId> scheduled_;
    std::map<sched::ViewId, std::optional<TimePoint>> written_next_;
};

bool extension_installed() {
    // Whether matviews is installed in this database.
    bool found = false;
    pg::in_transaction([&](pg::Spi& spi) { found = catalog::Store(spi).extension_installed(); });
    return found;
}

void scheduler_main(Datum arg) {
    // Connect as the bootstrap superuser, check the extension, then loop.
    g_database = DatumGetObjectId(arg);
    setup_signals();
    pg::call([&] { BackgroundWorkerInitializeConnectionByOid(g_database, InvalidOid, 0); });
    set_application_name("matviews scheduler");
    report_activity("");
    pg::call([] { before_shmem_exit(matviews_scheduler_exit, 0); });
    if (!extension_installed()) {
        g_installed = false;
        return;
    }
    scheduler_attach(g_database);
    pg::log(pg::LogLevel::log, "matviews scheduler started");
    SchedulerProcess process;
    process.run();
}

}  // namespace

}  // namespace mv::worker

void matviews_scheduler_main(Datum arg) {
    // The scheduler's entry point, under the worker guard.
    mv::pg::guard_worker(mv::worker::scheduler_main, arg);
}
