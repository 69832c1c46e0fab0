// The scheduler: one per database with matviews installed, started by the launcher. It feeds the
// scheduling core (core/scheduler.hpp) with the definitions' schedules and the queued runs, lets
// it decide what is due, and starts each run as a job worker connected as the view's owner. It
// wakes on its latch: commits that enqueue or change schedules, job workers that end, SIGHUP,
// and for the next due time. An idle scheduler runs no transaction, except one cheap check every
// matviews.scheduler_naptime (DROP EXTENSION, changes made without matviews' functions). At
// start it marks runs left `running` by dead processes as failed. It exits when the extension is
// dropped (or the database needs to be alone, see hooks.cpp). Runs start fairly across the roles
// they run as (the core) and across databases (worker/shmem.hpp).
#include "worker/scheduler.hpp"

#include "boundary/scopes.hpp"
#include "boundary/subxact.hpp"
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
uint32_t g_generation = 0;  // from the launcher, in bgw_extra: the one allowed to attach
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
    BackgroundWorkerHandle* handle;  // palloc'd by RegisterDynamicBackgroundWorker; freed in reap
    sched::ViewId view_id;
    int entry;  // the job's entry in shared memory (release_job)
};

// The running jobs by run id (owned by the SchedulerProcess), for matviews_scheduler_exit.
const std::map<int64_t, RunningJob>* g_running = nullptr;

extern "C" void matviews_scheduler_exit(int, Datum) {
    // Detaches from shared memory; when the database is needed alone (DROP DATABASE and
    // friends), first asks the postmaster to terminate the jobs, which are connected to it too.
    // TerminateBackgroundWorker only sets a flag and signals the postmaster: it cannot raise.
    if (g_running && jobs_must_stop(g_database))
        for (const auto& entry : *g_running) TerminateBackgroundWorker(entry.second.handle);
    scheduler_detach(g_database, g_generation, g_installed);
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
    bool no_slot = false;  // a launch of this tick found no free job (cluster-wide)

    sched::LaunchResult launch(const sched::Launch& l) override {
        // Reserve a job entry (cluster-wide and per-owner limits, the databases' turn), make
        // sure a queued run row exists, resolve the owner, start the worker. Reserving comes
        // first and needs no transaction, so a scheduler that waits for a free job stays cheap.
        int entry = -1;
        switch (try_reserve_job(g_database, static_cast<Oid>(l.owner), settings.max_workers,
                                effective_max_workers_per_owner(), &entry)) {
            case Reservation::kNoSlot:
                no_slot = true;
                return sched::LaunchResult::kNoSlot;
            case Reservation::kOwnerBusy:
                return sched::LaunchResult::kOwnerBusy;
            case Reservation::kReserved:
                break;
        }
        bool started = false;
        try {
            started = start(l, entry);
        } catch (const Error& e) {
            pg::log(pg::LogLevel::warning,
                    fmt::format("matviews scheduler: could not start a run of {}: {}", l.view,
                                e.what()));
        }
        if (!started) release_job(entry);
        // A failure to register is a lack of background worker slots: wait like for a job.
        return started ? sched::LaunchResult::kStarted : sched::LaunchResult::kNoSlot;
    }

  private:
    bool start(const sched::Launch& l, int entry) {
        // One transaction: the run row and the owner; then the worker.
        int64_t run_id = 0;
        JobArgs args{};
        args.database = g_database;
        args.lock_timeout_ms = worker_settings.job_lock_timeout_ms;
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
            release_job(entry);
            return true;  // the core sees it start and, right after, fail
        }
        BackgroundWorkerHandle* h = start_job(args);
        if (h == nullptr) {
            if (inserted)
                pg::in_transaction([&](pg::Spi& spi) { catalog::Store(spi).delete_run(run_id); });
            return false;
        }
        running[run_id] = RunningJob{h, l.view_id, entry};
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

    // The main loop. Each round: look (without a transaction) at what changed — a job ended,
    // a commit woke us, the definitions version moved, a periodic task is due — and open a
    // transaction only for that; then tick the core and sleep until the next due time, a
    // latch, or the next periodic task.
    void run() {
        pg::in_transaction([&](pg::Spi& spi) {
            catalog::Store store(spi);
            recover(store);
        });
        uint32_t seen_version = definitions_version(g_database) - 1;
        uint32_t seen_wakes = wake_count(g_database) - 1;
        std::optional<int64_t> seen_marker;
        TimePoint last_check = pg::now(), last_reload = 0, last_prune = 0, last_recover = pg::now();
        for (;;) {
            if (reload_config_if_requested()) {
                core_.set_max_workers(settings.max_workers);
                core_.set_max_workers_per_owner(effective_max_workers_per_owner());
                core_.set_time_zone(pg::time_zone(settings.timezone ? settings.timezone : "UTC"));
                last_prune = 0;  // a new runs_retention applies at once
                pg::log(pg::LogLevel::log, "matviews scheduler: configuration reloaded");
            }
            TimePoint now = pg::now();
            const Duration check_every =
                static_cast<Duration>(settings.scheduler_naptime_ms) * kMillisecond;
            const bool ended = any_job_ended();
            const uint32_t version = definitions_version(g_database);
            const uint32_t wakes = wake_count(g_database);
            const bool check = now - last_check >= check_every;
            const bool prune = settings.runs_retention_s > 0 && now - last_prune >= prune_every();
            const bool recover_now = now - last_recover > 60 * kSecond;
            bool reload = version != seen_version || now - last_reload > 10 * 60 * kSecond;
            bool queued = wakes != seen_wakes;
            bool dropped = false, outdated = false;
            // Marks are applied in batches at most every kWatchBatch: each step is a
            // transaction, and a busy table commits thousands of times a second.
            // Between batches the changes stay in shared memory, where later commits add to
            // them without waking this process again.
            const bool due = now - last_watch_step_ >= kWatchBatch;
            const bool marks = due ? collect_changes() : marks_waiting();
            const bool watch = reload || (watching_ && ended) || (marks && due);
            const bool collect = reload || (triggers_left_ > 0 && check);
            if (ended || check || prune || recover_now || reload || queued || watch) {
                // Each part in its own transaction, so that one failing never holds back the
                // others (the definitions and the queued runs above all).
                attempt([&](catalog::Store& store) {
                    if (!store.extension_installed()) {
                        dropped = true;
                        return;
                    }
                    if (!store.schema_current()) {
                        outdated = true;
                        return;
                    }
                    reap(store);
                    if (check || !seen_marker) {
                        // Outside changes (ALTER EXTENSION UPDATE, direct writes, a restore's
                        // COPY) show in the statistics' row counts; only then is anything read
                        // again. The first reading is taken before the first load, in the same
                        // round, so nothing written between the two goes unnoticed.
                        int64_t marker = store.tables_change_marker();
                        if (seen_marker && marker != *seen_marker) reload = queued = true;
                        seen_marker = marker;
                        if (check) last_check = now;
                    }
                });
                if (dropped) {
                    g_installed = false;
                    pg::log(pg::LogLevel::log, "matviews scheduler: extension dropped, exiting");
                    return;
                }
                if (outdated) {
                    // The library is newer than the database's matviews objects: nothing runs
                    // until ALTER EXTENSION matviews UPDATE, then everything is read again.
                    if (!outdated_logged_)
                        pg::log(pg::LogLevel::log,
                                "matviews scheduler: waiting for ALTER EXTENSION matviews UPDATE");
                    outdated_logged_ = true;
                    seen_version = version - 1;
                    wait_latch(static_cast<long>(check_every / kMillisecond));
                    continue;
                }
                outdated_logged_ = false;
                if (reload && attempt([&](catalog::Store& store) { load_definitions(store); })) {
                    seen_version = version;
                    last_reload = now;
                }
                // Before the queued runs are loaded, so the watch runs it queues start now.
                if (watch) {
                    last_watch_step_ = now;
                    bool applied = false;
                    if (watch_step(&applied)) queued = true;
                    // A failing step (logged) is tried again in a second, not every batch.
                    if (!applied) last_watch_step_ = now + kSecond - kWatchBatch;
                }
                if (collect) follow_watches();
                if (queued && attempt([&](catalog::Store& store) { load_queued(store); }))
                    seen_wakes = wakes;
                if (prune && attempt([&](catalog::Store& store) {
                        store.prune_runs(settings.runs_retention_s);
                    }))
                    last_prune = now;
                if (recover_now && attempt([&](catalog::Store& store) { recover(store); }))
                    last_recover = now;
            }
            launcher_.no_slot = false;
            Duration nap = core_.tick();
            // Nothing this scheduler could start is waiting for a free job any more: give the
            // turn back, so other databases do not wait for it.
            if (!launcher_.no_slot) stop_waiting(g_database);
            for (const auto& [view_id, outcome] : launcher_.ended)
                core_.finished(view_id, outcome.success, outcome.finished_at);
            bool again = !launcher_.ended.empty();
            launcher_.ended.clear();
            if (again) continue;
            TimePoint wake_at = pg::now() + nap;  // absolute: the write below must not delay it
            wake_at = std::min(wake_at, last_check + check_every);
            if (settings.runs_retention_s > 0)
                wake_at = std::min(wake_at, last_prune + prune_every());
            // Marks a locked definition row held back: its refresh is committing right now.
            if (!leftover_.empty()) wake_at = std::min(wake_at, pg::now() + 20 * kMillisecond);
            if (marks_waiting()) wake_at = std::min(wake_at, last_watch_step_ + kWatchBatch);
            write_next_run_times();
            Duration left = std::max<Duration>(0, wake_at - pg::now());
            long nap_ms = static_cast<long>((left + kMillisecond - 1) / kMillisecond);
            wait_latch(std::max(1L, nap_ms));
        }
    }

  private:
    static sched::SchedulerOptions options() {
        // The core's limits from the settings.
        sched::SchedulerOptions o;
        o.max_workers = settings.max_workers;
        o.max_workers_per_owner = effective_max_workers_per_owner();
        o.max_nap = 60 * kSecond;
        o.launch_retry_nap = 100 * kMillisecond;
        return o;
    }

    static Duration prune_every() {
        // How often finished runs are pruned: as often as runs_retention, between 1 s and 1 min.
        Duration retention = static_cast<Duration>(settings.runs_retention_s) * kSecond;
        return std::clamp<Duration>(retention, kSecond, 60 * kSecond);
    }

    // Runs one part of a round in its own transaction; false (logged) when it failed.
    static bool attempt(const std::function<void(catalog::Store&)>& part) {
        try {
            pg::in_transaction([&](pg::Spi& spi) {
                catalog::Store store(spi);
                part(store);
            });
            return true;
        } catch (const Error& e) {
            log_error(e);
            return false;
        }
    }

    bool any_job_ended() {
        // Whether a job worker has stopped; no transaction needed to ask the postmaster's slots.
        for (const auto& entry : launcher_.running) {
            pid_t pid = 0;
            BackgroundWorkerHandle* h = entry.second.handle;
            if (pg::call([&] { return GetBackgroundWorkerPid(h, &pid); }) == BGWH_STOPPED)
                return true;
        }
        return false;
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
            release_job(it->second.entry);
            pg::call([&] { pfree(h); });  // the handle is ours to free once the job is gone
            it = launcher_.running.erase(it);
        }
    }

    bool collect_changes() {
        // Takes the changes writers committed since the last round from shared memory (no
        // transaction); whether any mark waits to be applied.
        bool overflow = false;
        for (const Change& c : drain_changes(g_database, &overflow)) {
            catalog::WatchMark& m = undrained_[c.relid];
            m.relid = c.relid;
            m.count += static_cast<int64_t>(c.count);
            if (m.first_at == 0 || c.first_at < m.first_at) m.first_at = c.first_at;
        }
        if (overflow) mark_all_ = true;
        // With no watch, changes mark nothing (an incremental view's capture notes every
        // statement): dropped here, not applied in a transaction every batch. A watch created
        // since starts stale, and the refresh that follows comes after these commits.
        if (!watching_) undrained_.clear();
        return !undrained_.empty() || !leftover_.empty() || mark_all_;
    }

    bool marks_waiting() {
        return !undrained_.empty() || !leftover_.empty() || mark_all_ ||
               changes_pending(g_database);
    }

    bool watch_step(bool* applied) {
        // Applies the marks to the definitions that watch the changed relations, then queues a
        // watch run for each stale view without one; whether any run was queued. Marks stay
        // here until their transaction commits, so a failed round loses none.
        std::vector<catalog::WatchMark> marks;
        for (const auto& [relid, m] : undrained_) marks.push_back(m);
        for (const auto& m : leftover_) marks.push_back(m);
        std::vector<catalog::WatchMark> left;
        int64_t queued = 0;
        bool watching = watching_;
        if (!attempt([&](catalog::Store& store) {
                store.relax_commit();  // a crash marks every watched view stale again anyway
                left = store.apply_watch_marks(marks, mark_all_);
                queued = store.enqueue_watch_runs();
                watching = store.any_watched();
            }))
            return false;
        *applied = true;
        undrained_.clear();
        leftover_ = std::move(left);
        mark_all_ = false;
        watching_ = watching;
        return queued > 0;
    }

    void follow_watches() {
        // Follows each watch's sources again (a new partition, a replaced view), as its owner,
        // and drops the triggers no watch needs; what a busy table or definition held back is
        // tried again at the next check. A watch that cannot follow (its owner lacks TRIGGER on
        // a new table, say) is logged once per reason.
        attempt([&](catalog::Store& store) {
            int left = 0;
            for (int64_t id : store.watched_definitions()) {
                bool done = true;
                auto failed = pg::in_subtransaction([&] { done = store.refollow_watch(id); });
                if (failed) {
                    if (pg::is_cancel(*failed)) throw Error(*failed);
                    done = failed->sqlstate != sqlstate::lock_not_available;
                    auto [it, fresh] = refollow_errors_.emplace(id, failed->message);
                    if (done && (fresh || it->second != failed->message)) {
                        it->second = failed->message;
                        pg::log(pg::LogLevel::warning,
                                fmt::format("matviews scheduler: the watch of definition {} does "
                                            "not follow its sources: {}",
                                            id, failed->message));
                    }
                } else {
                    refollow_errors_.erase(id);
                }
                if (!done) left++;
            }
            triggers_left_ = left + store.drop_unused_watch_triggers();
        });
    }

    void load_definitions(catalog::Store& store) {
        // Every scheduled definition, with its run history and owner, into the core. A row that
        // cannot be read or understood is skipped and logged once (until it changes or is
        // fixed); the others still load.
        std::set<sched::ViewId> seen;
        std::set<sched::ViewId> bad_now;
        for (const auto& entry : store.scheduler_definitions()) {
            const catalog::ScheduledRow& row = entry.row;
            sched::ViewConfig c;
            c.id = row.id;
            c.view = row.view;
            c.owner = static_cast<sched::OwnerId>(entry.owner);
            std::optional<std::string> problem = entry.error;
            if (!problem) {
                // parse_schedule and the options throw mv::Error; interval_us runs SQL, so it
                // gets a subtransaction of its own: its error must not end the transaction.
                try {
                    c.schedule = parse_schedule(row.schedule);
                    c.enabled = row.enabled;
                    if (const Json* m = row.options.find("max_retries"); m && m->is_int())
                        c.retry.max_retries = static_cast<int>(m->as_int());
                    if (const Json* d = row.options.find("retry_delay")) {
                        if (d->is_int()) {
                            c.retry.base_delay = d->as_int() * kSecond;
                        } else if (d->is_string()) {
                            int64_t us = 0;
                            const std::string text = d->as_string();
                            if (auto err =
                                    pg::in_subtransaction([&] { us = store.interval_us(text); }))
                                throw Error(*err);
                            c.retry.base_delay = us;
                        }
                    }
                } catch (const Error& e) {
                    problem = e.what();
                }
            }
            if (problem) {
                bad_now.insert(row.id);
                auto [it, fresh] = bad_rows_.emplace(row.id, *problem);
                if (fresh || it->second != *problem) {
                    it->second = *problem;
                    pg::log(pg::LogLevel::warning,
                            fmt::format("matviews scheduler: skipping the schedule of {}: {}",
                                        row.view, *problem));
                }
                continue;
            }
            c.consecutive_failures = row.consecutive_failures;
            if (row.last_started) c.history.last_started = *row.last_started;
            if (row.last_finished) c.history.last_finished = *row.last_finished;
            core_.upsert(c);
            seen.insert(c.id);
        }
        for (auto it = bad_rows_.begin(); it != bad_rows_.end();)
            it = bad_now.count(it->first) ? std::next(it) : bad_rows_.erase(it);
        for (sched::ViewId id : scheduled_) {
            if (!seen.count(id)) {
                for (sched::RunId dropped : core_.remove(id)) (void)dropped;
                written_next_.erase(id);
            }
        }
        scheduled_ = std::move(seen);
    }

    void load_queued(catalog::Store& store) {
        // Queued runs into the core (known ones cost a lookup), by view: the definition, else
        // the relation. A row that cannot be read is skipped and logged once. Runs the core
        // holds that are no longer queued (cancelled, or changed without matviews' functions)
        // are dropped, so they are not launched only to find nothing to claim.
        std::set<int64_t> present;
        const auto entries = store.scheduler_queued_runs();
        for (const auto& entry : entries) present.insert(entry.row.id);
        std::vector<sched::RunId> gone;
        for (const auto& [id, job] : core_.jobs())
            for (const sched::QueuedRun& q : job.queued)
                if (!present.count(q.run_id)) gone.push_back(q.run_id);
        for (sched::RunId id : gone) core_.cancel(id);
        for (const auto& entry : entries) {
            const catalog::QueuedRunRow& q = entry.row;
            if (entry.error) {
                if (bad_queued_.insert(q.id).second)
                    pg::log(pg::LogLevel::warning,
                            fmt::format("matviews scheduler: skipping queued run {}: {}", q.id,
                                        *entry.error));
                continue;
            }
            if (launcher_.running.count(q.id)) continue;
            sched::ViewId view_id;
            if (q.definition_id)
                view_id = *q.definition_id;
            else if (q.relid != InvalidOid)
                view_id = -static_cast<int64_t>(q.relid);
            else
                view_id = -(int64_t(1) << 40) - q.id;  // the view is gone: the run fails on its own
            core_.enqueue(view_id, q.view, q.id, q.due, static_cast<sched::OwnerId>(entry.owner));
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
    std::map<sched::ViewId, std::string> bad_rows_;  // definitions skipped, with the reason logged
    std::set<int64_t> bad_queued_;                   // queued runs skipped (logged once)
    // Watches: changes drained from shared memory and not yet applied, marks for definitions
    // whose row was locked, and whether every watched view is to be marked (at start, since a
    // crash or a restart loses what shared memory held; or after an overflow).
    std::map<Oid, catalog::WatchMark> undrained_;
    std::vector<catalog::WatchMark> leftover_;
    bool mark_all_ = true;
    TimePoint last_watch_step_ = 0;
    static constexpr Duration kWatchBatch = 10 * kMillisecond;
    bool watching_ = true;  // any definition watched (as of the last watch step)
    bool outdated_logged_ = false;
    int triggers_left_ = -1;  // watches and triggers a busy table held back (-1: not looked yet)
    std::map<int64_t, std::string> refollow_errors_;  // watches that cannot follow (logged once)
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
    std::memcpy(&g_generation, MyBgworkerEntry->bgw_extra, sizeof g_generation);
    setup_signals();
    // Only the scheduler the launcher registered last may serve, once, and not while the
    // database is reserved for DROP DATABASE and friends: checked before connecting (so a
    // paused database is not connected to) and again, atomically, when attaching.
    if (!scheduler_may_start(g_database, g_generation)) {
        note_scheduler_stopped(g_database, g_generation);
        pg::log(
            pg::LogLevel::log,
            "matviews scheduler: another scheduler serves this database, or it is paused; exiting");
        return;
    }
    pg::call([&] { BackgroundWorkerInitializeConnectionByOid(g_database, InvalidOid, 0); });
    set_application_name("matviews scheduler");
    report_activity("");
    pg::call([] { before_shmem_exit(matviews_scheduler_exit, 0); });
    if (!extension_installed()) {
        g_installed = false;
        return;
    }
    if (!scheduler_attach(g_database, g_generation)) {
        g_installed = true;  // found installed; nothing published, so detach changes nothing
        pg::log(
            pg::LogLevel::log,
            "matviews scheduler: another scheduler serves this database, or it is paused; exiting");
        return;
    }
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
