// The scheduling core (see scheduler.hpp).
#include "core/scheduler.hpp"

#include <algorithm>
#include <set>
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
    options_.max_workers_per_owner = std::max(0, options_.max_workers_per_owner);
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
    j.owner = config.owner;
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
    for (const QueuedRun& q : j.queued) {
        dropped.push_back(q.run_id);
        queued_index_.erase(q.run_id);
    }
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

bool Scheduler::enqueue(ViewId id, const std::string& view, RunId run_id, TimePoint run_at,
                        OwnerId owner) {
    // Replaces the run if queued already (even for another view), then adds it in run_at order.
    // The indexes keep this logarithmic: the worker re-feeds every queued run it reads, and a
    // backlog may hold tens of thousands.
    if (running_runs_.count(run_id)) return false;
    if (auto known = queued_index_.find(run_id);
        known != queued_index_.end() && known->second == id) {
        const auto& queue = jobs_.at(id).queued;
        const QueuedRun key{run_id, run_at, owner};
        auto pos = std::lower_bound(
            queue.begin(), queue.end(), key, [](const QueuedRun& a, const QueuedRun& b) {
                return std::tie(a.run_at, a.run_id) < std::tie(b.run_at, b.run_id);
            });
        if (pos != queue.end() && pos->run_id == run_id && pos->owner == owner) return true;
    }
    cancel(run_id);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
        it = jobs_.emplace(id, JobState{}).first;
        it->second.id = id;
    }
    JobState& j = it->second;
    if (!j.managed) j.view = view;
    j.removed = false;
    const QueuedRun run{run_id, run_at, owner};
    auto pos = std::upper_bound(
        j.queued.begin(), j.queued.end(), run, [](const QueuedRun& a, const QueuedRun& b) {
            return std::tie(a.run_at, a.run_id) < std::tie(b.run_at, b.run_id);
        });
    j.queued.insert(pos, run);
    queued_index_[run_id] = id;
    return true;
}

bool Scheduler::cancel(RunId run_id) {
    // Finds the run through the index.
    auto known = queued_index_.find(run_id);
    if (known == queued_index_.end()) return false;
    auto it = jobs_.find(known->second);
    queued_index_.erase(known);
    if (it == jobs_.end()) return false;
    auto& queue = it->second.queued;
    auto q = std::find_if(queue.begin(), queue.end(),
                          [&](const QueuedRun& r) { return r.run_id == run_id; });
    if (q == queue.end()) return false;
    queue.erase(q);
    forget_if_idle(it);
    return true;
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

OwnerId Scheduler::candidate_owner(const JobState& j, const Candidate& c) {
    // A queued run carries its own owner; scheduled runs and retries run as the view's.
    return c.queued ? j.queued.front().owner : j.owner;
}

bool Scheduler::owner_at_limit(OwnerId owner) const {
    // Only with a per-owner limit.
    return options_.max_workers_per_owner > 0 &&
           running_for(owner) >= options_.max_workers_per_owner;
}

int Scheduler::running_for(OwnerId owner) const {
    // Owners without runs are not in the map.
    auto it = running_by_owner_.find(owner);
    return it == running_by_owner_.end() ? 0 : it->second;
}

Duration Scheduler::tick() {
    // Collects due views by owner, starts them round-robin across owners, then works out the
    // nap.
    const TimePoint now = clock_.now();
    struct Due {
        TimePoint due;
        ViewId id;
        bool queued;
    };
    std::map<OwnerId, std::vector<Due>> due;
    for (const auto& [id, j] : jobs_)
        if (auto c = candidate(j); c && c->due <= now)
            due[candidate_owner(j, *c)].push_back({c->due, id, c->queued});
    std::map<OwnerId, size_t> next;  // each owner's next entry; == size() once done
    for (auto& [owner, list] : due) {
        std::sort(list.begin(), list.end(), [](const Due& a, const Due& b) {
            return std::tie(a.due, a.id) < std::tie(b.due, b.id);
        });
        next[owner] = 0;
    }

    bool refused = false;
    std::set<OwnerId> busy_elsewhere;  // kOwnerBusy in this tick
    while (running_ < options_.max_workers) {
        // The first owner after the last one served (wrapping) with a due run it may start.
        auto eligible = [&](OwnerId o) {
            return next[o] < due[o].size() && !owner_at_limit(o) && !busy_elsewhere.count(o);
        };
        std::optional<OwnerId> pick;
        auto start = last_owner_ ? due.upper_bound(*last_owner_) : due.begin();
        for (auto it = start; it != due.end() && !pick; ++it)
            if (eligible(it->first)) pick = it->first;
        for (auto it = due.begin(); it != start && !pick; ++it)
            if (eligible(it->first)) pick = it->first;
        if (!pick) break;
        const Due d = due[*pick][next[*pick]++];
        JobState& j = jobs_.at(d.id);
        Launch l;
        l.view_id = j.id;
        l.view = j.view;
        l.owner = *pick;
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
        const LaunchResult result = launcher_.launch(l);
        if (result == LaunchResult::kNoSlot) {
            refused = true;
            break;
        }
        if (result == LaunchResult::kOwnerBusy) {
            busy_elsewhere.insert(*pick);
            continue;
        }
        if (d.queued) {
            queued_index_.erase(j.queued.front().run_id);
            running_runs_[j.queued.front().run_id] = j.id;
            j.queued.erase(j.queued.begin());
        } else {
            j.history.last_started = now;
            j.next_due.reset();
        }
        j.running = std::move(l);
        running_++;
        running_by_owner_[*pick]++;
        last_owner_ = *pick;
    }
    if (!busy_elsewhere.empty()) refused = true;  // their runs elsewhere end on their own

    if (running_ >= options_.max_workers) return options_.max_nap;
    Duration nap = options_.max_nap;
    bool overdue = false;
    for (const auto& [id, j] : jobs_) {
        auto c = candidate(j);
        if (!c) continue;
        if (c->due <= now) {
            // An owner at its limit here waits for one of its runs to finish (finished() and
            // tick() follow); only runs that could start now make the nap short.
            if (!owner_at_limit(candidate_owner(j, *c))) overdue = true;
        } else {
            nap = std::min(nap, c->due - now);
        }
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
    if (auto o = running_by_owner_.find(l.owner); o != running_by_owner_.end() && --o->second <= 0)
        running_by_owner_.erase(o);
    if (l.run_id) running_runs_.erase(*l.run_id);
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

void Scheduler::set_max_workers_per_owner(int max_workers_per_owner) {
    // Takes effect at the next tick.
    options_.max_workers_per_owner = std::max(0, max_workers_per_owner);
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
