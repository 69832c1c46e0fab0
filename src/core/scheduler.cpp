// The scheduling core (see scheduler.hpp).
#include "core/scheduler.hpp"

#include <algorithm>
#include <tuple>

namespace mv::sched {

namespace {

std::shared_ptr<const TimeZone> zone_or_utc(std::shared_ptr<const TimeZone> tz) {
    // The given zone, or the shared UTC zone (not owned).
    if (tz) return tz;
    return std::shared_ptr<const TimeZone>(&utc_zone(), [](const TimeZone*) {});
}

}  // namespace

const char* to_string(RunKind kind) {
    // The names used in logs and matviews.runs.meta.
    switch (kind) {
        case RunKind::kScheduled:
            return "scheduled";
        case RunKind::kRetry:
            return "retry";
        case RunKind::kQueued:
            return "queued";
    }
    return "unknown";
}

Scheduler::Scheduler(Clock& clock, Launcher& launcher, SchedulerOptions options,
                     std::shared_ptr<const TimeZone> tz, Random random)
    : clock_(clock),
      launcher_(launcher),
      options_(options),
      tz_(zone_or_utc(std::move(tz))),
      random_(std::move(random)) {
    // Keeps the options sane (a zero nap would spin); views arrive through upsert and enqueue.
    options_.max_workers = std::max(0, options_.max_workers);
    options_.max_nap = std::max(options_.max_nap, kMillisecond);
    options_.launch_retry_nap = std::max(options_.launch_retry_nap, kMillisecond);
}

void Scheduler::recompute_next_due(JobState& j, TimePoint now) {
    // A pending retry keeps its time; otherwise the regular due time, not before the backoff.
    if (!j.schedule) {
        j.next_due.reset();
        j.next_kind = RunKind::kScheduled;
        return;
    }
    if (j.next_kind == RunKind::kRetry && j.backoff_until) {
        j.next_due = *j.backoff_until;
        return;
    }
    j.next_kind = RunKind::kScheduled;
    TimePoint due = next_due(*j.schedule, j.history, now, zone());
    if (j.backoff_until) due = std::max(due, *j.backoff_until);
    j.next_due = due;
}

void Scheduler::upsert(const ViewConfig& config) {
    // New views start from the restored state; known ones keep theirs.
    const TimePoint now = clock_.now();
    auto it = jobs_.find(config.id);
    const bool known = it != jobs_.end();
    if (!known) it = jobs_.emplace(config.id, JobState{}).first;
    JobState& j = it->second;
    const bool was_managed = known && j.managed;
    const bool schedule_changed = !was_managed || j.schedule != config.schedule;
    j.id = config.id;
    j.view = config.view;
    j.managed = true;
    j.removed = false;
    j.enabled = config.enabled;
    j.retry = config.retry;
    j.schedule = config.schedule;
    if (!was_managed) {
        j.history = config.history;
        j.consecutive_failures = std::max(0, config.consecutive_failures);
        j.retries_done = 0;
        j.next_kind = RunKind::kScheduled;
        if (j.consecutive_failures > 0 && j.history.last_finished)
            j.backoff_until =
                *j.history.last_finished + retry_delay(j.consecutive_failures, j.retry, random_);
    }
    // During a scheduled run or retry, finished() computes the next due time; a queued run
    // leaves the schedule alone.
    const bool scheduled_run = j.running && j.running->kind != RunKind::kQueued;
    if (schedule_changed && !scheduled_run) {
        j.next_kind = RunKind::kScheduled;
        recompute_next_due(j, now);
    }
}

std::vector<RunId> Scheduler::remove(ViewId id) {
    // Drops the queue and the schedule; a running view stays as a tombstone until it finishes.
    std::vector<RunId> dropped;
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return dropped;
    JobState& j = it->second;
    for (const QueuedRun& q : j.queued) dropped.push_back(q.run_id);
    if (j.running) {
        j.queued.clear();
        j.schedule.reset();
        j.next_due.reset();
        j.managed = false;
        j.removed = true;
    } else {
        jobs_.erase(it);
    }
    return dropped;
}

bool Scheduler::enqueue(ViewId id, const std::string& view, RunId run_id, TimePoint run_at) {
    // Replaces the run if queued already (even for another view), then adds it in run_at order.
    for (const auto& entry : jobs_)
        if (entry.second.running && entry.second.running->run_id == run_id) return false;
    cancel(run_id);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
        it = jobs_.emplace(id, JobState{}).first;
        it->second.id = id;
    }
    JobState& j = it->second;
    if (!j.managed) j.view = view;
    j.removed = false;
    const QueuedRun run{run_id, run_at};
    auto pos = std::upper_bound(
        j.queued.begin(), j.queued.end(), run, [](const QueuedRun& a, const QueuedRun& b) {
            return std::tie(a.run_at, a.run_id) < std::tie(b.run_at, b.run_id);
        });
    j.queued.insert(pos, run);
    return true;
}

bool Scheduler::cancel(RunId run_id) {
    // Finds the run in any queue.
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
        auto& queue = it->second.queued;
        auto q = std::find_if(queue.begin(), queue.end(),
                              [&](const QueuedRun& r) { return r.run_id == run_id; });
        if (q == queue.end()) continue;
        queue.erase(q);
        forget_if_idle(it);
        return true;
    }
    return false;
}

void Scheduler::forget_if_idle(std::map<ViewId, JobState>::iterator it) {
    // Drops an entry that is neither managed, running nor queued.
    const JobState& j = it->second;
    if (!j.running && (j.removed || !j.managed) && j.queued.empty()) jobs_.erase(it);
}

std::optional<Scheduler::Candidate> Scheduler::candidate(const JobState& j) const {
    // The earlier of the scheduled (or retry) run, when enabled, and the first queued run.
    if (j.running) return std::nullopt;
    std::optional<Candidate> c;
    if (j.managed && j.enabled && j.schedule && j.next_due) c = Candidate{*j.next_due, false};
    if (!j.queued.empty() && (!c || j.queued.front().run_at < c->due))
        c = Candidate{j.queued.front().run_at, true};
    return c;
}

Duration Scheduler::tick() {
    // Collects due views, starts them in due order, then works out the nap.
    const TimePoint now = clock_.now();
    struct Due {
        TimePoint due;
        ViewId id;
        bool queued;
    };
    std::vector<Due> due;
    for (const auto& [id, j] : jobs_)
        if (auto c = candidate(j); c && c->due <= now) due.push_back({c->due, id, c->queued});
    std::sort(due.begin(), due.end(), [](const Due& a, const Due& b) {
        return std::tie(a.due, a.id) < std::tie(b.due, b.id);
    });

    bool refused = false;
    for (const Due& d : due) {
        if (running_ >= options_.max_workers) break;
        JobState& j = jobs_.at(d.id);
        Launch l;
        l.view_id = j.id;
        l.view = j.view;
        l.due = d.due;
        l.started_at = now;
        l.consecutive_failures = j.consecutive_failures;
        if (d.queued) {
            l.kind = RunKind::kQueued;
            l.run_id = j.queued.front().run_id;
        } else {
            l.kind = j.next_kind;
            if (l.kind == RunKind::kRetry) l.attempt = j.retries_done + 1;
        }
        if (!launcher_.launch(l)) {
            refused = true;
            break;
        }
        if (d.queued) {
            j.queued.erase(j.queued.begin());
        } else {
            j.history.last_started = now;
            j.next_due.reset();
        }
        j.running = std::move(l);
        running_++;
    }

    if (running_ >= options_.max_workers) return options_.max_nap;
    Duration nap = options_.max_nap;
    bool overdue = false;
    for (const auto& [id, j] : jobs_) {
        auto c = candidate(j);
        if (!c) continue;
        if (c->due <= now)
            overdue = true;
        else
            nap = std::min(nap, c->due - now);
    }
    if (overdue) nap = std::min(nap, refused ? options_.launch_retry_nap : Duration{0});
    return std::max(nap, Duration{0});
}

bool Scheduler::finished(ViewId id, bool success, TimePoint finished_at) {
    // Clears the run; scheduled runs and retries update the history and failure state.
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !it->second.running) return false;
    JobState& j = it->second;
    const Launch l = *j.running;
    j.running.reset();
    running_--;
    if (l.kind != RunKind::kQueued) {
        j.history.last_finished = finished_at;
        if (success) {
            j.consecutive_failures = 0;
            j.retries_done = 0;
            j.backoff_until.reset();
            j.next_kind = RunKind::kScheduled;
        } else {
            j.consecutive_failures++;
            j.retries_done = l.kind == RunKind::kRetry ? l.attempt : 0;
            j.backoff_until = finished_at + retry_delay(j.consecutive_failures, j.retry, random_);
            j.next_kind =
                j.retries_done < j.retry.max_retries ? RunKind::kRetry : RunKind::kScheduled;
        }
        recompute_next_due(j, finished_at);
    }
    forget_if_idle(it);
    return true;
}

void Scheduler::set_max_workers(int max_workers) {
    // Takes effect at the next tick.
    options_.max_workers = std::max(0, max_workers);
}

void Scheduler::set_time_zone(std::shared_ptr<const TimeZone> tz) {
    // Cron due times depend on the zone; pending retries do not.
    tz_ = zone_or_utc(std::move(tz));
    const TimePoint now = clock_.now();
    for (auto& [id, j] : jobs_)
        if ((!j.running || j.running->kind == RunKind::kQueued) && j.schedule &&
            j.schedule->is_cron() && j.next_kind != RunKind::kRetry)
            recompute_next_due(j, now);
}

const JobState* Scheduler::job(ViewId id) const {
    // A lookup.
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : &it->second;
}

std::optional<TimePoint> Scheduler::next_wakeup() const {
    // The minimum over the candidates.
    std::optional<TimePoint> earliest;
    for (const auto& [id, j] : jobs_)
        if (auto c = candidate(j)) earliest = earliest ? std::min(*earliest, c->due) : c->due;
    return earliest;
}

}  // namespace mv::sched
