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

void fail_run(pg::Spi& spi, int64_t run_id, const Json& error) {
    // Marks a run failed now and, for a refresh or swap of a managed view, counts the failure in
    // the definition's consecutive_failures (as the runner does for runs that reach it).
    auto r = spi.exec(
        "UPDATE matviews.runs SET status = 'failed', started_at = COALESCE(started_at, "
        "pg_catalog.now()), "
        "finished_at = pg_catalog.clock_timestamp(), error = $2 WHERE id OPERATOR(pg_catalog.=) $1 "
        "RETURNING definition_id, operation",
        {pg::Param::int8(run_id), pg::Param::jsonb(error)});
    if (r.empty() || r.first()[0].is_null()) return;
    std::string operation = r.first()[1].as_string();
    if (operation != "refresh" && operation != "swap") return;
    spi.exec(
        "UPDATE matviews.definitions SET consecutive_failures = consecutive_failures "
        "OPERATOR(pg_catalog.+) 1 WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::Param::int8(r.first()[0].as_int())});
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
            // Not worth a WAL flush on the way to starting a job: recover() handles a run a
            // crash would lose, and the job's own commits flush.
            spi.exec("SET LOCAL synchronous_commit = off");
            if (l.run_id) {
                run_id = *l.run_id;
            } else {
                auto r = spi.exec(
                    "INSERT INTO matviews.runs (view, definition_id, operation, strategy, status, "
                    "trigger, run_at, "
                    "role, owner, attempt, meta) "
                    "SELECT pg_catalog.format('%I.%I', d.schema_name, d.view_name), d.id, "
                    "'refresh', "
                    "d.refresh_strategy, 'queued', 'schedule', pg_catalog.to_timestamp($2 / "
                    "1000000.0), "
                    "d.owner, d.owner, 0, pg_catalog.jsonb_build_object('kind', "
                    "$3::pg_catalog.text, "
                    "'retry', $4::pg_catalog.int4) FROM matviews.definitions d WHERE d.id "
                    "OPERATOR(pg_catalog.=) $1 "
                    "RETURNING id",
                    {pg::Param::int8(l.view_id), pg::Param::float8(static_cast<double>(l.due)),
                     pg::Param::text(sched::to_string(l.kind)), pg::Param::int4(l.attempt)});
                if (r.empty()) return;  // the definition is gone; the next reload removes it
                run_id = r.first()[0].as_int();
                inserted = true;
            }
            // Connecting as the owner needs LOGIN, CONNECT on this database and no connection
            // limit to hit; otherwise the job connects as the bootstrap superuser and switches.
            auto owner = spi.exec(
                "SELECT c.relowner, a.rolcanlogin AND a.rolconnlimit OPERATOR(pg_catalog.<) 0 "
                "AND pg_catalog.has_database_privilege(c.relowner, "
                "pg_catalog.current_database(), 'CONNECT'), "
                "a.rolname::pg_catalog.text FROM matviews.runs r "
                "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) "
                "pg_catalog.to_regclass(r.view) "
                "JOIN pg_catalog.pg_authid a ON a.oid OPERATOR(pg_catalog.=) c.relowner "
                "WHERE r.id OPERATOR(pg_catalog.=) $1 AND c.relkind OPERATOR(pg_catalog.=) 'm'",
                {pg::Param::int8(run_id)});
            if (owner.empty()) {
                fail_run(spi, run_id,
                         error_object(
                             sqlstate::undefined_table,
                             fmt::format("materialized view {} does not exist", l.view),
                             l.kind == sched::RunKind::kQueued
                                 ? std::string("It was dropped after the run was queued.")
                                 : fmt::format("Recreate the view, or stop its schedule with "
                                               "matviews.unschedule({0}) or matviews.delete({0}).",
                                               pg::quote_literal(l.view))));
                return;
            }
            args.role = static_cast<Oid>(owner.first()[0].as_int());
            args.connect_as_role = owner.first()[1].as_bool();
            args.run_id = run_id;
            spi.exec(
                "UPDATE matviews.runs SET owner = $2::pg_catalog.name, role = CASE WHEN trigger "
                "OPERATOR(pg_catalog.=) 'queue' THEN role ELSE $2::pg_catalog.name END "
                "WHERE id OPERATOR(pg_catalog.=) $1",
                {pg::Param::int8(run_id), pg::Param::text(owner.first()[2].as_string())});
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
                pg::in_transaction([&](pg::Spi& spi) {
                    spi.exec("DELETE FROM matviews.runs WHERE id OPERATOR(pg_catalog.=) $1",
                             {pg::Param::int8(run_id)});
                });
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
        pg::in_transaction([&](pg::Spi& spi) { recover(spi); });
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
                    if (spi.exec("SELECT 1 FROM pg_catalog.pg_extension WHERE extname "
                                 "OPERATOR(pg_catalog.=) 'matviews'")
                            .empty()) {
                        dropped = true;
                        return;
                    }
                    reap(spi);
                    TimePoint now = pg::now();
                    uint32_t version = definitions_version(g_database);
                    if (version != seen_version || now - last_reload > 60 * kSecond) {
                        load_definitions(spi);
                        seen_version = version;
                        last_reload = now;
                    }
                    load_queued(spi);
                    if (settings.runs_retention_s > 0 && now - last_prune >= prune_every()) {
                        prune(spi);
                        last_prune = now;
                    }
                    if (now - last_recover > 60 * kSecond) {
                        recover(spi);
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

    void recover(pg::Spi& spi) {
        // Runs left running by processes that are gone: failed, "server restarted" when they
        // started before this server began serving (it restarted, crashed or was promoted since),
        // else "the process running it ended". At start, then about once a minute, for jobs
        // whose scheduler ended before they did.
        int64_t since = serving_since();
        auto r = spi.exec(
            R"SQL(
            SELECT r.id, r.started_at OPERATOR(pg_catalog.<) $1
            FROM matviews.runs r
            WHERE r.status OPERATOR(pg_catalog.=) 'running'
              AND ((r.started_at OPERATOR(pg_catalog.<) $1) IS TRUE
                   OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                                  WHERE a.pid OPERATOR(pg_catalog.=) r.pid))
            ORDER BY r.id
            )SQL",
            {since > 0 ? pg::Param::timestamptz(since) : pg::Param::null(TIMESTAMPTZOID)});
        for (const auto& row : r.rows) {
            bool restarted = !row[1].is_null() && row[1].as_bool();
            Json error = error_object(
                "57P01", restarted ? "server restarted" : "the process running it ended",
                "The view was left as it was before the run; run it again if needed.");
            error.set("detail", "The run was in progress when its process ended.");
            fail_run(spi, row[0].as_int(), error);
        }
        if (!r.empty())
            pg::log(pg::LogLevel::log,
                    fmt::format("matviews scheduler: marked {} interrupted run(s) failed",
                                r.rows.size()));
    }

    void reap(pg::Spi& spi) {
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
            auto r = spi.exec(
                "SELECT status, pg_catalog.date_part('epoch', COALESCE(finished_at, "
                "pg_catalog.now())) "
                "OPERATOR(pg_catalog.*) 1000000 FROM matviews.runs WHERE id OPERATOR(pg_catalog.=) "
                "$1",
                {pg::Param::int8(run_id)});
            bool success = false;
            TimePoint finished = pg::now();
            if (!r.empty()) {
                std::string status = r.first()[0].as_string();
                finished = static_cast<TimePoint>(r.first()[1].as_double());
                success = status == "success" || status == "skipped";
                if (status == "queued" || status == "running") {
                    fail_run(spi, run_id,
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

    void load_definitions(pg::Spi& spi) {
        // Every scheduled definition, with its run history, into the core.
        auto r = spi.exec(R"SQL(
            SELECT d.id, pg_catalog.format('%I.%I', d.schema_name, d.view_name), d.schedule, d.enabled,
                   d.options, d.consecutive_failures,
                   (SELECT pg_catalog.date_part('epoch', pg_catalog.max(r.started_at)) OPERATOR(pg_catalog.*) 1000000
                      FROM matviews.runs r WHERE r.definition_id OPERATOR(pg_catalog.=) d.id
                       AND r.trigger OPERATOR(pg_catalog.=) 'schedule'),
                   (SELECT pg_catalog.date_part('epoch', pg_catalog.max(r.finished_at)) OPERATOR(pg_catalog.*) 1000000
                      FROM matviews.runs r WHERE r.definition_id OPERATOR(pg_catalog.=) d.id
                       AND r.operation OPERATOR(pg_catalog.=) ANY ('{refresh,swap,create}')
                       AND r.status OPERATOR(pg_catalog.=) ANY ('{success,failed}'))
            FROM matviews.definitions d WHERE d.schedule IS NOT NULL
        )SQL");
        std::set<sched::ViewId> seen;
        for (const auto& row : r.rows) {
            sched::ViewConfig c;
            c.id = row[0].as_int();
            c.view = row[1].as_string();
            try {
                c.schedule = parse_schedule(row[2].as_string());
            } catch (const Error& e) {
                pg::log(pg::LogLevel::warning,
                        fmt::format("matviews scheduler: {} has an invalid schedule: {}", c.view,
                                    e.what()));
                continue;
            }
            c.enabled = row[3].as_bool();
            const Json& options = row[4].as_json();
            if (const Json* m = options.find("max_retries"); m && m->is_int())
                c.retry.max_retries = static_cast<int>(m->as_int());
            if (const Json* d = options.find("retry_delay")) {
                if (d->is_int())
                    c.retry.base_delay = d->as_int() * kSecond;
                else if (d->is_string())
                    c.retry.base_delay = retry_delay_us(spi, d->as_string());
            }
            c.consecutive_failures = static_cast<int>(row[5].as_int());
            if (!row[6].is_null())
                c.history.last_started = static_cast<TimePoint>(row[6].as_double());
            if (!row[7].is_null())
                c.history.last_finished = static_cast<TimePoint>(row[7].as_double());
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

    static Duration retry_delay_us(pg::Spi& spi, const std::string& interval) {
        // An interval option in microseconds.
        auto v = spi.scalar(
            "SELECT pg_catalog.date_part('epoch', $1::pg_catalog.interval) OPERATOR(pg_catalog.*) "
            "1000000",
            {pg::Param::text(interval)});
        return static_cast<Duration>(v.as_double());
    }

    void load_queued(pg::Spi& spi) {
        // Queued runs the core does not know yet.
        auto r = spi.exec(R"SQL(
            SELECT r.id, r.view, r.definition_id, pg_catalog.to_regclass(r.view)::pg_catalog.oid,
                   pg_catalog.date_part('epoch', COALESCE(r.run_at, r.started_at, pg_catalog.now()))
                   OPERATOR(pg_catalog.*) 1000000
            FROM matviews.runs r WHERE r.status OPERATOR(pg_catalog.=) 'queued' ORDER BY r.id
        )SQL");
        for (const auto& row : r.rows) {
            int64_t run_id = row[0].as_int();
            if (launcher_.running.count(run_id)) continue;
            sched::ViewId view_id;
            if (!row[2].is_null())
                view_id = row[2].as_int();
            else if (!row[3].is_null())
                view_id = -row[3].as_int();
            else
                view_id =
                    -(int64_t(1) << 40) - run_id;  // the view is gone: the run fails on its own
            core_.enqueue(view_id, row[1].as_string(), run_id,
                          static_cast<TimePoint>(row[4].as_double()));
        }
    }

    void prune(pg::Spi& spi) {
        // Finished runs older than matviews.runs_retention.
        spi.exec(
            "DELETE FROM matviews.runs WHERE status OPERATOR(pg_catalog.<>) ALL "
            "('{queued,running}') "
            "AND finished_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) "
            "pg_catalog.make_interval(secs => $1))",
            {pg::Param::float8(settings.runs_retention_s)});
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
                spi.exec("SET LOCAL synchronous_commit = off");  // display only
                for (const auto& [id, next] : changes)
                    spi.exec(
                        "UPDATE matviews.definitions SET next_run_at = pg_catalog.to_timestamp($2 "
                        "/ 1000000.0) "
                        "WHERE id OPERATOR(pg_catalog.=) $1 AND schedule IS NOT NULL",
                        {pg::Param::int8(id), next ? pg::Param::float8(static_cast<double>(*next))
                                                   : pg::Param::null(FLOAT8OID)});
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
    pg::in_transaction([&](pg::Spi& spi) {
        found = !spi.exec(
                        "SELECT 1 FROM pg_catalog.pg_extension WHERE extname "
                        "OPERATOR(pg_catalog.=) 'matviews'")
                     .empty();
    });
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
