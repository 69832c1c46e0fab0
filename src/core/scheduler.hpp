// The scheduling core the background worker drives each time it wakes: which managed views and
// queued one-off runs are due, starting them through a launcher while fewer than max_workers
// run, never two runs of one view at once, re-queueing interval schedules on completion,
// collapsing missed cron ticks, and retrying failures with backoff. The clock and the launcher
// are interfaces, so tests drive it with a fake clock and a fake launcher. Single-threaded, no
// PostgreSQL headers.
//
// The worker's loop:
//   sched.upsert(...) / remove(...) / enqueue(...)   as definitions and queued runs change
//   Duration nap = sched.tick();                      starts what is due
//   WaitLatch(..., ceil(nap / 1000) ms)               woken early by commits and finished runs
//   sched.finished(view, ok, now) for each ended run, then tick() again
//
// Failures and retries (per view, RetryPolicy):
// - A failed run raises consecutive_failures to n and sets a backoff floor:
//   backoff_until = finished_at + retry_delay(n) (equal jitter, see schedule.hpp).
// - While the failed regular run has retries left (fewer than max_retries retries so far), the
//   next run is a retry at backoff_until, whatever the regular schedule says.
// - Once they are used up, the view waits for its next regular due time, but never runs before
//   backoff_until: next = max(regular due, backoff_until). The next regular run, if it fails,
//   gets max_retries retries of its own, with delays that keep growing (n keeps counting).
// - So a view that always fails runs at most once per backoff period, which grows to
//   RetryPolicy::max_delay (1 hour by default); it never hot-loops, even with a 1-second
//   interval. A success resets n to 0 and removes the floor.
// Queued one-off runs (matviews.enqueue) run once at or after their run_at, are not retried, and
// change neither the regular schedule nor the failure count; they still never overlap another
// run of the same view.
//
// Fairness between owners (the role a run executes as, an OwnerId): at most
// max_workers_per_owner runs of one owner at once, and due runs start round-robin across owners:
// after a run of owner A started, the next free worker goes to the first owner after A (in
// OwnerId order, wrapping) that has a due run and is below its limit. So one owner's backlog of
// queued runs, or its long jobs, never holds back another owner's due run for longer than one
// run of that backlog takes. Within one owner, runs start earliest due first. A launcher can
// also refuse a run because its owner is at a limit the core does not see (runs in other
// databases): that owner is skipped for the rest of the tick, the others still start.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/cron.hpp"
#include "core/schedule.hpp"

namespace mv::sched {

// Identifies a view: the definition id for managed views, or any other stable per-view key the
// worker chooses for views that are not managed (e.g. the relation's OID). A scheduler that
// serves several databases must make the keys unique across them.
using ViewId = int64_t;
// The id of a queued run in matviews.runs.
using RunId = int64_t;
// The role a run executes as (in the server: the role's OID; 0 when unknown, which is one owner
// like any other).
using OwnerId = int64_t;

// Where the scheduler gets the time; a fake in tests.
class Clock {
  public:
    virtual ~Clock() = default;
    // The current instant.
    virtual TimePoint now() = 0;
};

// Why a run starts.
enum class RunKind {
    kScheduled,  // the view's schedule is due
    kRetry,      // a retry of a failed scheduled run
    kQueued,     // a queued one-off run (matviews.enqueue)
};

// "scheduled", "retry" or "queued".
const char* to_string(RunKind kind);

// A run the scheduler asks the launcher to start.
struct Launch {
    ViewId view_id = 0;
    std::string view;  // display name
    RunKind kind = RunKind::kScheduled;
    std::optional<RunId> run_id;   // kQueued: the queued run
    OwnerId owner = 0;             // the role it runs as: the queued run's, else the view's
    TimePoint due = 0;             // when it was due (may be well before started_at)
    TimePoint started_at = 0;      // the clock when it was launched
    int attempt = 0;               // kRetry: 1 for the first retry of the failed run, 2, ...
    int consecutive_failures = 0;  // of the view before this run
};

// What a launch attempt did.
enum class LaunchResult {
    kStarted,    // the run started
    kNoSlot,     // no free worker (cluster-wide): nothing more starts in this tick
    kOwnerBusy,  // the run's owner is at its limit elsewhere: the tick skips this owner only
};

// Starts runs, e.g. as dynamic background workers; a fake in tests.
class Launcher {
  public:
    virtual ~Launcher() = default;
    // Starts the run, or says why it cannot start now; a run that did not start stays due and
    // is tried again on a later tick.
    virtual LaunchResult launch(const Launch& launch) = 0;
};

// A managed view's settings, from matviews.definitions.
struct ViewConfig {
    ViewId id = 0;
    std::string view;                  // display name
    OwnerId owner = 0;                 // the role its scheduled runs execute as
    std::optional<Schedule> schedule;  // none: only queued runs
    bool enabled = true;  // false: no scheduled runs or retries (queued runs still run)
    RetryPolicy retry;
    // State restored when the scheduler does not know the view yet (the worker restarted):
    // the view's latest scheduled run, and its consecutive failures.
    RunHistory history;
    int consecutive_failures = 0;
};

// A queued one-off run.
struct QueuedRun {
    RunId run_id = 0;
    TimePoint run_at = 0;
    OwnerId owner = 0;  // the role it executes as
};

// What the scheduler knows of one view; read-only for callers (e.g. for matviews.status).
struct JobState {
    ViewId id = 0;
    std::string view;
    bool managed = false;  // known from upsert; false for a view known only by queued runs
    OwnerId owner = 0;     // of its scheduled runs (from upsert)
    std::optional<Schedule> schedule;
    bool enabled = true;
    RetryPolicy retry;
    std::optional<TimePoint> next_due;        // next scheduled run or retry; none if unscheduled
    RunKind next_kind = RunKind::kScheduled;  // kScheduled or kRetry
    std::optional<TimePoint> backoff_until;   // after a failure: no scheduled run before this
    std::vector<QueuedRun> queued;            // earliest run_at first
    std::optional<Launch> running;            // the run in progress
    RunHistory history;                       // of scheduled runs and retries
    int consecutive_failures = 0;
    int retries_done = 0;  // retries used since the last failed regular run
    bool removed = false;  // removed while running: forgotten when the run finishes
};

// Limits of the scheduler (negative or zero values are raised to 0 workers and 1 ms naps).
struct SchedulerOptions {
    int max_workers = 2;                  // matviews.max_workers
    int max_workers_per_owner = 0;        // runs of one owner at once; 0: only max_workers
    Duration max_nap = 60 * kSecond;      // the longest sleep tick() returns
    Duration launch_retry_nap = kSecond;  // the sleep after the launcher had no slot
};

// Decides which runs start and when (see the file comment); the worker's single thread owns it.
class Scheduler {
  public:
    // A scheduler with its clock and launcher (both must outlive it), the time zone of cron
    // schedules (nullptr: UTC) and the random source of retry jitter.
    Scheduler(Clock& clock, Launcher& launcher, SchedulerOptions options = {},
              std::shared_ptr<const TimeZone> tz = nullptr, Random random = seeded_random(1));

    // Adds a managed view or updates its settings. A new view's next due time comes from its
    // schedule and restored history; a changed schedule recomputes it (at the end of the run in
    // progress, if any) while keeping any backoff floor. Running state and queued runs stay.
    void upsert(const ViewConfig& config);

    // Forgets a view: its schedule and its queued runs, whose ids are returned. A run in
    // progress still counts against max_workers until finished() reports it.
    std::vector<RunId> remove(ViewId id);

    // Queues a one-off run of a view (managed or not) at run_at, to run as owner. Idempotent by
    // run_id: a run already queued gets the new run_at and owner; a run in progress is left
    // alone (returns false). Constant work for a run already queued unchanged, so the worker
    // can feed it every queued run it reads.
    bool enqueue(ViewId id, const std::string& view, RunId run_id, TimePoint run_at,
                 OwnerId owner = 0);

    // Drops a queued run; false when it is not queued.
    bool cancel(RunId run_id);

    // Starts due runs, one per view, while fewer than max_workers run: round-robin across
    // owners below max_workers_per_owner (see the file comment), each owner's earliest due
    // first (ties by view id). Stops at the first kNoSlot; skips an owner after kOwnerBusy.
    // Returns how long the caller may sleep: until the earliest due time of a view that could
    // start, capped by max_nap; launch_retry_nap (or less) after a refused launch; max_nap when
    // all workers, or all workers its due owners may use, are busy (finished() and the next
    // tick() follow the end of a run). Never 0 when nothing could start. Round up when
    // converting to milliseconds.
    Duration tick();

    // Reports the end of a view's run: clears it and computes the view's next due time
    // (interval: finished_at + interval; cron: next tick after the run's start; failure: see
    // the header comment). False when the view has no run in progress.
    bool finished(ViewId id, bool success, TimePoint finished_at);

    // Changes max_workers; runs beyond a lowered limit finish normally.
    void set_max_workers(int max_workers);
    // Changes max_workers_per_owner (0: no limit of its own), likewise.
    void set_max_workers_per_owner(int max_workers_per_owner);
    // Changes the time zone of cron schedules and recomputes their due times (retries pending
    // stay). nullptr: UTC.
    void set_time_zone(std::shared_ptr<const TimeZone> tz);

    // The state of a view, or nullptr.
    const JobState* job(ViewId id) const;
    // Every view's state, by id.
    const std::map<ViewId, JobState>& jobs() const { return jobs_; }
    // Runs in progress.
    int running_count() const { return running_; }
    // Runs in progress of one owner.
    int running_for(OwnerId owner) const;
    // The earliest due time of a view without a run in progress (scheduled, retry or queued).
    std::optional<TimePoint> next_wakeup() const;

  private:
    // The earliest due time of a view that may start, and whether it is a queued run.
    struct Candidate {
        TimePoint due;
        bool queued;
    };
    std::optional<Candidate> candidate(const JobState& j) const;
    // The owner a view's candidate runs as.
    static OwnerId candidate_owner(const JobState& j, const Candidate& c);
    bool owner_at_limit(OwnerId owner) const;
    void recompute_next_due(JobState& j, TimePoint now);
    void forget_if_idle(std::map<ViewId, JobState>::iterator it);
    const TimeZone& zone() const { return *tz_; }

    Clock& clock_;
    Launcher& launcher_;
    SchedulerOptions options_;
    std::shared_ptr<const TimeZone> tz_;
    Random random_;
    std::map<ViewId, JobState> jobs_;
    int running_ = 0;
    std::map<OwnerId, int> running_by_owner_;  // owners with runs in progress only
    std::optional<OwnerId> last_owner_;        // the owner whose run started last
    std::map<RunId, ViewId> queued_index_;     // where each queued run is
    std::map<RunId, ViewId> running_runs_;     // queued runs in progress
};

}  // namespace mv::sched
