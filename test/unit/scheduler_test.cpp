// Unit tests of the scheduling core (core/scheduler), driven by a fake clock and a fake launcher.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/scheduler.hpp"

using mv::Duration;
using mv::kHour;
using mv::kMinute;
using mv::kSecond;
using mv::make_utc;
using mv::parse_schedule;
using mv::TimePoint;
using mv::sched::JobState;
using mv::sched::Launch;
using mv::sched::LaunchResult;
using mv::sched::RunKind;
using mv::sched::Scheduler;
using mv::sched::SchedulerOptions;
using mv::sched::ViewConfig;
using mv::sched::ViewId;

namespace {

const TimePoint kT0 = make_utc(2024, 1, 1, 10);

// A clock the test moves by hand.
class FakeClock : public mv::sched::Clock {
  public:
    TimePoint now() override { return t; }
    void advance(Duration d) { t += d; }
    TimePoint t = kT0;
};

// A launcher that records launches and refuses them on demand.
class FakeLauncher : public mv::sched::Launcher {
  public:
    LaunchResult launch(const Launch& l) override {
        attempts++;
        if (refuse > 0) {
            refuse--;
            return LaunchResult::kNoSlot;
        }
        if (busy_owners.count(l.owner)) return LaunchResult::kOwnerBusy;
        launched.push_back(l);
        return LaunchResult::kStarted;
    }
    // Launches of one view.
    std::vector<Launch> of(ViewId id) const {
        std::vector<Launch> out;
        for (const Launch& l : launched)
            if (l.view_id == id) out.push_back(l);
        return out;
    }
    std::vector<Launch> launched;
    std::set<mv::sched::OwnerId> busy_owners;  // refused with kOwnerBusy (runs elsewhere)
    int refuse = 0;
    int attempts = 0;
};

ViewConfig view(ViewId id, const char* schedule) {
    ViewConfig c;
    c.id = id;
    c.view = "public.mv_" + std::to_string(id);
    if (schedule != nullptr) c.schedule = parse_schedule(schedule);
    return c;
}

// The test fixture: a scheduler with 2 workers, a 60 s max nap, on a fake clock and launcher.
class SchedulerTest : public ::testing::Test {
  protected:
    SchedulerTest() : sched(clock, launcher, options()) {}

    static SchedulerOptions options() {
        SchedulerOptions o;
        o.max_workers = 2;
        o.max_nap = 60 * kSecond;
        o.launch_retry_nap = kSecond;
        return o;
    }

    // Moves the clock to t and ticks; returns the nap.
    Duration tick_at(TimePoint t) {
        clock.t = t;
        return sched.tick();
    }

    FakeClock clock;
    FakeLauncher launcher;
    Scheduler sched;
};

}  // namespace

TEST_F(SchedulerTest, IntervalRunsAtOnceThenIntervalAfterItFinishes) {
    sched.upsert(view(1, "5 minutes"));
    EXPECT_EQ(sched.job(1)->next_due, kT0);  // never run: due now
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(launcher.launched[0].kind, RunKind::kScheduled);
    EXPECT_EQ(launcher.launched[0].due, kT0);
    EXPECT_EQ(launcher.launched[0].view, "public.mv_1");
    EXPECT_TRUE(sched.job(1)->running);
    EXPECT_EQ(sched.running_count(), 1);

    clock.advance(kMinute);
    EXPECT_TRUE(sched.finished(1, true, clock.t));
    EXPECT_EQ(sched.job(1)->next_due, kT0 + 6 * kMinute);
    EXPECT_EQ(sched.tick(), 60 * kSecond);  // 5 minutes away, capped by max_nap
    EXPECT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(tick_at(kT0 + 6 * kMinute - 1), 1);  // 1 microsecond to go
    EXPECT_EQ(launcher.launched.size(), 1u);
    tick_at(kT0 + 6 * kMinute);
    EXPECT_EQ(launcher.launched.size(), 2u);
}

TEST_F(SchedulerTest, SlowRunNeverStartsTwiceAndRequeuesOnCompletion) {
    sched.upsert(view(1, "1 minute"));
    sched.tick();
    // The run takes 10 minutes, ten times its interval.
    for (int s = 1; s <= 600; s += 7) {
        const Duration nap = tick_at(kT0 + s * kSecond);
        EXPECT_EQ(nap, 60 * kSecond);  // nothing can start: sleep until woken
    }
    EXPECT_EQ(launcher.launched.size(), 1u);
    clock.t = kT0 + 10 * kMinute;
    sched.finished(1, true, clock.t);
    EXPECT_EQ(sched.job(1)->next_due, kT0 + 11 * kMinute);
    EXPECT_EQ(sched.tick(), kMinute);
    EXPECT_EQ(launcher.launched.size(), 1u);
    tick_at(kT0 + 11 * kMinute);
    ASSERT_EQ(launcher.launched.size(), 2u);
    EXPECT_EQ(launcher.launched[1].started_at, kT0 + 11 * kMinute);
}

TEST_F(SchedulerTest, AtMostMaxWorkersRunAtOnce) {
    for (ViewId id = 1; id <= 5; id++) sched.upsert(view(id, "1 hour"));
    EXPECT_EQ(sched.tick(), 60 * kSecond);  // full: sleep until a run ends
    EXPECT_EQ(launcher.launched.size(), 2u);
    EXPECT_EQ(sched.running_count(), 2);
    sched.tick();
    EXPECT_EQ(launcher.launched.size(), 2u);
    clock.advance(kSecond);
    sched.finished(launcher.launched[0].view_id, true, clock.t);
    sched.tick();
    EXPECT_EQ(launcher.launched.size(), 3u);
    EXPECT_EQ(sched.running_count(), 2);
    // Equal due times start in view id order.
    EXPECT_EQ(launcher.launched[0].view_id, 1);
    EXPECT_EQ(launcher.launched[1].view_id, 2);
    EXPECT_EQ(launcher.launched[2].view_id, 3);
}

TEST_F(SchedulerTest, SaturatedSchedulerDoesNotSpin) {
    sched.set_max_workers(1);
    sched.upsert(view(1, "1 second"));
    sched.upsert(view(2, "1 second"));
    EXPECT_EQ(sched.tick(), 60 * kSecond);
    EXPECT_EQ(launcher.launched.size(), 1u);
    // View 2 is overdue but cannot start: the nap is not 0.
    EXPECT_EQ(tick_at(kT0 + 5 * kSecond), 60 * kSecond);
    EXPECT_EQ(launcher.launched.size(), 1u);
}

TEST_F(SchedulerTest, FairOrderingEarliestDueFirst) {
    sched.set_max_workers(1);
    // Due at 10:00:30 (cron) , 10:00 (interval, never run) and 10:00:10 (queued).
    sched.upsert(view(3, "30 10 * * *"));  // due 10:30
    sched.upsert(view(2, "1 hour"));       // due now (10:00)
    sched.enqueue(1, "public.other", 77, kT0 + 10 * kSecond);
    clock.t = kT0 + kHour;
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(launcher.launched[0].view_id, 2);
    sched.finished(2, true, clock.t);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 2u);
    EXPECT_EQ(launcher.launched[1].view_id, 1);
    EXPECT_EQ(launcher.launched[1].kind, RunKind::kQueued);
    sched.finished(1, true, clock.t);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 3u);
    EXPECT_EQ(launcher.launched[2].view_id, 3);
    EXPECT_EQ(launcher.launched[2].due, make_utc(2024, 1, 1, 10, 30));
}

TEST_F(SchedulerTest, MissedCronTicksCollapseIntoOneRun) {
    // The view last ran at 10:00; the worker comes back at 10:47.
    ViewConfig c = view(1, "*/10 * * * *");
    c.history.last_started = kT0;
    c.history.last_finished = kT0 + kMinute;
    clock.t = kT0 + 47 * kMinute;
    sched.upsert(c);
    EXPECT_EQ(sched.job(1)->next_due, kT0 + 10 * kMinute);
    sched.tick();
    sched.tick();
    EXPECT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(launcher.launched[0].due, kT0 + 10 * kMinute);
    clock.advance(kMinute);
    sched.finished(1, true, clock.t);
    EXPECT_EQ(sched.job(1)->next_due, kT0 + 50 * kMinute);
    EXPECT_EQ(sched.tick(), 60 * kSecond);  // 2 minutes away, capped by max_nap
    EXPECT_EQ(tick_at(kT0 + 49 * kMinute + 30 * kSecond), 30 * kSecond);
    EXPECT_EQ(launcher.launched.size(), 1u);
}

TEST_F(SchedulerTest, CronTicksDuringALongRunCollapseIntoOneRunAfterIt) {
    sched.upsert(view(1, "*/10 * * * *"));
    EXPECT_EQ(sched.job(1)->next_due, kT0 + 10 * kMinute);
    tick_at(kT0 + 10 * kMinute);
    ASSERT_EQ(launcher.launched.size(), 1u);
    // The run takes 25 minutes, over the 10:20 and 10:30 ticks.
    for (int m = 11; m < 35; m++) tick_at(kT0 + m * kMinute);
    EXPECT_EQ(launcher.launched.size(), 1u);
    clock.t = kT0 + 35 * kMinute;
    sched.finished(1, true, clock.t);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 2u);  // one run for both missed ticks
    EXPECT_EQ(launcher.launched[1].due, kT0 + 20 * kMinute);
    clock.advance(kMinute);
    sched.finished(1, true, clock.t);
    EXPECT_EQ(sched.job(1)->next_due, kT0 + 40 * kMinute);
}

TEST_F(SchedulerTest, FailingViewBacksOffAndNeverHotLoops) {
    ViewConfig c = view(1, "1 second");
    c.retry = mv::RetryPolicy{3, 10 * kSecond, 10 * kMinute};
    sched.upsert(c);
    // Every run fails at once; follow the scheduler for 6 hours.
    std::vector<TimePoint> starts;
    const TimePoint end = kT0 + 6 * kHour;
    while (clock.t < end) {
        const size_t before = launcher.launched.size();
        const Duration nap = sched.tick();
        ASSERT_GT(nap, 0);
        if (launcher.launched.size() > before) {
            starts.push_back(clock.t);
            sched.finished(1, false, clock.t);
            continue;
        }
        clock.advance(nap);
    }
    // Gaps grow (equal jitter: [c/2, c], doubling) up to the cap, and never below 5 s.
    ASSERT_GT(starts.size(), 10u);
    for (size_t i = 1; i < starts.size(); i++) {
        const Duration gap = starts[i] - starts[i - 1];
        const Duration c = mv::backoff_ceiling(static_cast<int>(i), 10 * kSecond, 10 * kMinute);
        EXPECT_GE(gap, c / 2) << i;
        EXPECT_LE(gap, c) << i;
        EXPECT_GE(gap, 5 * kSecond);
    }
    // 6 hours with a 10-minute cap: at most about 6*60/5 runs, not 21600.
    EXPECT_LE(starts.size(), 90u);
    EXPECT_EQ(sched.job(1)->consecutive_failures, static_cast<int>(starts.size()));
}

TEST_F(SchedulerTest, RetriesThenWaitsForTheRegularSchedule) {
    ViewConfig c = view(1, "0 * * * *");  // hourly
    c.retry = mv::RetryPolicy{2, 30 * kSecond, kHour};
    sched.upsert(c);
    tick_at(make_utc(2024, 1, 1, 11));
    ASSERT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(launcher.launched[0].kind, RunKind::kScheduled);
    EXPECT_EQ(launcher.launched[0].attempt, 0);

    // Fails at 11:01: retry 1 within [15 s, 30 s].
    clock.t = make_utc(2024, 1, 1, 11, 1);
    sched.finished(1, false, clock.t);
    const JobState* j = sched.job(1);
    EXPECT_EQ(j->consecutive_failures, 1);
    EXPECT_EQ(j->next_kind, RunKind::kRetry);
    ASSERT_TRUE(j->next_due);
    EXPECT_GE(*j->next_due, clock.t + 15 * kSecond);
    EXPECT_LE(*j->next_due, clock.t + 30 * kSecond);
    EXPECT_EQ(sched.tick(), *j->next_due - clock.t);
    tick_at(*j->next_due);
    ASSERT_EQ(launcher.launched.size(), 2u);
    EXPECT_EQ(launcher.launched[1].kind, RunKind::kRetry);
    EXPECT_EQ(launcher.launched[1].attempt, 1);
    EXPECT_EQ(launcher.launched[1].consecutive_failures, 1);

    // Retry 1 fails: retry 2 within [30 s, 60 s].
    sched.finished(1, false, clock.t);
    EXPECT_EQ(j->next_kind, RunKind::kRetry);
    EXPECT_GE(*j->next_due, clock.t + 30 * kSecond);
    EXPECT_LE(*j->next_due, clock.t + 60 * kSecond);
    tick_at(*j->next_due);
    ASSERT_EQ(launcher.launched.size(), 3u);
    EXPECT_EQ(launcher.launched[2].attempt, 2);

    // Retry 2 fails: retries used up, wait for the regular 12:00 tick.
    sched.finished(1, false, clock.t);
    EXPECT_EQ(j->consecutive_failures, 3);
    EXPECT_EQ(j->next_kind, RunKind::kScheduled);
    EXPECT_EQ(j->next_due, make_utc(2024, 1, 1, 12));
    tick_at(make_utc(2024, 1, 1, 12));
    ASSERT_EQ(launcher.launched.size(), 4u);
    EXPECT_EQ(launcher.launched[3].kind, RunKind::kScheduled);
    EXPECT_EQ(launcher.launched[3].consecutive_failures, 3);

    // That run fails too: it gets its own retries, with longer delays (4 failures:
    // [120 s, 240 s]).
    clock.advance(kSecond);
    sched.finished(1, false, clock.t);
    EXPECT_EQ(j->next_kind, RunKind::kRetry);
    EXPECT_EQ(j->retries_done, 0);
    EXPECT_GE(*j->next_due, clock.t + 120 * kSecond);
    EXPECT_LE(*j->next_due, clock.t + 240 * kSecond);

    // A success resets everything.
    tick_at(*j->next_due);
    clock.advance(kSecond);
    sched.finished(1, true, clock.t);
    EXPECT_EQ(j->consecutive_failures, 0);
    EXPECT_EQ(j->retries_done, 0);
    EXPECT_FALSE(j->backoff_until);
    EXPECT_EQ(j->next_kind, RunKind::kScheduled);
    EXPECT_EQ(j->next_due, make_utc(2024, 1, 1, 13));
}

TEST_F(SchedulerTest, BackoffIsAFloorWhenRetriesAreUsedUp) {
    ViewConfig c = view(1, "1 minute");
    c.retry = mv::RetryPolicy{0, 20 * kMinute, kHour};
    sched.upsert(c);
    sched.tick();
    sched.finished(1, false, clock.t);
    const JobState* j = sched.job(1);
    EXPECT_EQ(j->next_kind, RunKind::kScheduled);
    // Regular due would be in 1 minute; the backoff pushes it to [10, 20] minutes.
    EXPECT_GE(*j->next_due, clock.t + 10 * kMinute);
    EXPECT_LE(*j->next_due, clock.t + 20 * kMinute);
    EXPECT_EQ(*j->next_due, *j->backoff_until);
}

TEST_F(SchedulerTest, RefusedLaunchIsRetriedOnTheNextTick) {
    sched.upsert(view(1, "5 minutes"));
    sched.upsert(view(2, "5 minutes"));
    launcher.refuse = 1;
    EXPECT_EQ(sched.tick(), kSecond);  // launch_retry_nap
    EXPECT_EQ(launcher.attempts, 1);   // stopped at the first refusal
    EXPECT_TRUE(launcher.launched.empty());
    EXPECT_FALSE(sched.job(1)->running);
    EXPECT_EQ(sched.job(1)->next_due, kT0);  // still due, not lost
    tick_at(kT0 + kSecond);
    ASSERT_EQ(launcher.launched.size(), 2u);
    EXPECT_EQ(launcher.launched[0].view_id, 1);  // keeps its place in line
    EXPECT_EQ(launcher.launched[0].due, kT0);
}

TEST_F(SchedulerTest, RefusedQueuedRunIsNotLost) {
    sched.enqueue(9, "public.adhoc", 500, kT0);
    launcher.refuse = 3;
    for (int i = 0; i < 3; i++) EXPECT_EQ(tick_at(kT0 + i * kSecond), kSecond);
    EXPECT_TRUE(launcher.launched.empty());
    ASSERT_NE(sched.job(9), nullptr);
    EXPECT_EQ(sched.job(9)->queued.size(), 1u);
    tick_at(kT0 + 3 * kSecond);
    ASSERT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(launcher.launched[0].run_id, 500);
}

TEST_F(SchedulerTest, NapIsTheTimeToTheEarliestDueRunCappedByMaxNap) {
    EXPECT_EQ(sched.tick(), 60 * kSecond);  // nothing at all
    sched.upsert(view(1, "@daily"));
    EXPECT_EQ(sched.tick(), 60 * kSecond);
    sched.enqueue(2, "public.q", 1, kT0 + 42 * kSecond);
    EXPECT_EQ(sched.tick(), 42 * kSecond);
    sched.enqueue(3, "public.r", 2, kT0 + 1500);
    EXPECT_EQ(sched.tick(), 1500);
    EXPECT_EQ(sched.next_wakeup(), kT0 + 1500);
    EXPECT_EQ(tick_at(kT0 + 1500), 42 * kSecond - 1500);
    EXPECT_EQ(launcher.launched.size(), 1u);
}

TEST_F(SchedulerTest, QueuedRunStartsAtRunAtAndIsForgotten) {
    EXPECT_TRUE(sched.enqueue(7, "public.adhoc", 1001, kT0 + 30 * kSecond));
    EXPECT_EQ(sched.tick(), 30 * kSecond);
    EXPECT_TRUE(launcher.launched.empty());
    tick_at(kT0 + 30 * kSecond);
    ASSERT_EQ(launcher.launched.size(), 1u);
    const Launch& l = launcher.launched[0];
    EXPECT_EQ(l.kind, RunKind::kQueued);
    EXPECT_EQ(l.run_id, 1001);
    EXPECT_EQ(l.view, "public.adhoc");
    EXPECT_EQ(l.due, kT0 + 30 * kSecond);
    EXPECT_TRUE(sched.finished(7, false, clock.t));
    EXPECT_EQ(sched.job(7), nullptr);  // not managed: nothing left to remember
    EXPECT_FALSE(sched.finished(7, true, clock.t));
    tick_at(kT0 + kHour);
    EXPECT_EQ(launcher.launched.size(), 1u);  // queued runs are not retried
}

TEST_F(SchedulerTest, QueuedAndScheduledRunsOfOneViewNeverOverlap) {
    sched.upsert(view(1, "10 minutes"));
    sched.tick();  // scheduled run starts
    sched.enqueue(1, "ignored", 55, kT0);
    sched.enqueue(1, "ignored", 56, kT0 + kSecond);
    EXPECT_EQ(tick_at(kT0 + 5 * kSecond), 60 * kSecond);
    EXPECT_EQ(launcher.launched.size(), 1u);
    sched.finished(1, true, clock.t);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 2u);
    EXPECT_EQ(launcher.launched[1].run_id, 55);
    EXPECT_EQ(launcher.launched[1].view, "public.mv_1");  // the managed name wins
    sched.tick();
    EXPECT_EQ(launcher.launched.size(), 2u);
    sched.finished(1, true, clock.t);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 3u);
    EXPECT_EQ(launcher.launched[2].run_id, 56);
    sched.finished(1, true, clock.t);
    // Queued runs leave the interval schedule alone: next due 10 minutes after the scheduled
    // run finished at 10:00:05.
    EXPECT_EQ(sched.job(1)->next_due, kT0 + 5 * kSecond + 10 * kMinute);
    EXPECT_EQ(sched.job(1)->consecutive_failures, 0);
}

TEST_F(SchedulerTest, EnqueueIsIdempotentByRunId) {
    EXPECT_TRUE(sched.enqueue(1, "public.a", 10, kT0 + kMinute));
    EXPECT_TRUE(sched.enqueue(1, "public.a", 10, kT0 + 2 * kMinute));
    ASSERT_EQ(sched.job(1)->queued.size(), 1u);
    EXPECT_EQ(sched.job(1)->queued[0].run_at, kT0 + 2 * kMinute);
    EXPECT_TRUE(sched.enqueue(1, "public.a", 11, kT0 + kMinute));
    ASSERT_EQ(sched.job(1)->queued.size(), 2u);
    EXPECT_EQ(sched.job(1)->queued[0].run_id, 11);  // run_at order
    tick_at(kT0 + kMinute);
    ASSERT_EQ(launcher.launched.size(), 1u);
    // The running run, seen again in the queue table, is not queued twice.
    EXPECT_FALSE(sched.enqueue(1, "public.a", 11, kT0 + kMinute));
    EXPECT_EQ(sched.job(1)->queued.size(), 1u);
}

TEST_F(SchedulerTest, CancelDropsAQueuedRun) {
    sched.enqueue(1, "public.a", 10, kT0 + kMinute);
    EXPECT_TRUE(sched.cancel(10));
    EXPECT_FALSE(sched.cancel(10));
    EXPECT_EQ(sched.job(1), nullptr);
    tick_at(kT0 + kHour);
    EXPECT_TRUE(launcher.launched.empty());
}

TEST_F(SchedulerTest, RemoveWhileRunningStillCountsAgainstMaxWorkers) {
    sched.set_max_workers(1);
    sched.upsert(view(1, "1 minute"));
    sched.upsert(view(2, "1 minute"));
    sched.enqueue(1, "x", 90, kT0 + kHour);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(sched.remove(1), (std::vector<mv::sched::RunId>{90}));
    EXPECT_EQ(sched.running_count(), 1);
    EXPECT_EQ(tick_at(kT0 + kSecond), 60 * kSecond);
    EXPECT_EQ(launcher.launched.size(), 1u);  // view 2 waits for the slot
    EXPECT_TRUE(sched.finished(1, true, clock.t));
    EXPECT_EQ(sched.job(1), nullptr);
    EXPECT_EQ(sched.running_count(), 0);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 2u);
    EXPECT_EQ(launcher.launched[1].view_id, 2);
    EXPECT_TRUE(sched.remove(2).empty());
    EXPECT_TRUE(sched.remove(12345).empty());
}

TEST_F(SchedulerTest, ScheduleChangesRecomputeTheDueTime) {
    sched.upsert(view(1, "1 hour"));
    sched.tick();
    clock.advance(kMinute);
    sched.finished(1, true, clock.t);
    EXPECT_EQ(sched.job(1)->next_due, kT0 + kMinute + kHour);
    // Same schedule again (re-read from the catalog): nothing changes.
    sched.upsert(view(1, "60 minutes"));
    EXPECT_EQ(sched.job(1)->next_due, kT0 + kMinute + kHour);
    // Shorter interval: counted from the last finish.
    sched.upsert(view(1, "5 minutes"));
    EXPECT_EQ(sched.job(1)->next_due, kT0 + 6 * kMinute);
    // Cron: next tick after the last start.
    sched.upsert(view(1, "*/15 * * * *"));
    EXPECT_EQ(sched.job(1)->next_due, kT0 + 15 * kMinute);
    // Unscheduled: no scheduled runs, queued ones still run.
    sched.upsert(view(1, nullptr));
    EXPECT_FALSE(sched.job(1)->next_due);
    sched.enqueue(1, "x", 3, kT0 + 2 * kMinute);
    tick_at(kT0 + kHour);
    ASSERT_EQ(launcher.launched.size(), 2u);
    EXPECT_EQ(launcher.launched[1].kind, RunKind::kQueued);
    sched.finished(1, true, clock.t);
    ASSERT_NE(sched.job(1), nullptr);  // still managed
    tick_at(kT0 + 10 * kHour);
    EXPECT_EQ(launcher.launched.size(), 2u);
}

TEST_F(SchedulerTest, ScheduleChangeDuringARunAppliesWhenItEnds) {
    sched.upsert(view(1, "1 hour"));
    sched.tick();
    sched.upsert(view(1, "2 minutes"));
    EXPECT_FALSE(sched.job(1)->next_due);
    clock.advance(kMinute);
    sched.finished(1, true, clock.t);
    EXPECT_EQ(sched.job(1)->next_due, clock.t + 2 * kMinute);
}

TEST_F(SchedulerTest, DisabledViewsRunOnlyQueuedRuns) {
    ViewConfig c = view(1, "1 minute");
    c.enabled = false;
    sched.upsert(c);
    EXPECT_EQ(sched.tick(), 60 * kSecond);
    EXPECT_TRUE(launcher.launched.empty());
    sched.enqueue(1, "x", 4, kT0);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(launcher.launched[0].kind, RunKind::kQueued);
    sched.finished(1, true, clock.t);
    tick_at(kT0 + kHour);
    EXPECT_EQ(launcher.launched.size(), 1u);
    // Enabled again: the overdue run starts once.
    c.enabled = true;
    sched.upsert(c);
    sched.tick();
    sched.tick();
    EXPECT_EQ(launcher.launched.size(), 2u);
}

TEST_F(SchedulerTest, RestoredStateAfterARestart) {
    // An interval view that finished at 09:58 and had failed twice: due at 09:59 by its
    // schedule, but not before the backoff for 2 failures ([30 s, 60 s] after 09:58).
    ViewConfig c = view(1, "1 minute");
    c.retry = mv::RetryPolicy{3, 30 * kSecond, kHour};
    c.history.last_started = kT0 - 3 * kMinute;
    c.history.last_finished = kT0 - 2 * kMinute;
    c.consecutive_failures = 2;
    sched.upsert(c);
    const JobState* j = sched.job(1);
    EXPECT_EQ(j->consecutive_failures, 2);
    ASSERT_TRUE(j->backoff_until);
    EXPECT_GE(*j->backoff_until, kT0 - 2 * kMinute + 30 * kSecond);
    EXPECT_LE(*j->backoff_until, kT0 - 2 * kMinute + 60 * kSecond);
    EXPECT_EQ(j->next_due, std::max(kT0 - kMinute, *j->backoff_until));
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(launcher.launched[0].consecutive_failures, 2);
    // Restored state is used only for views the scheduler does not know yet.
    c.consecutive_failures = 0;
    sched.upsert(c);
    EXPECT_EQ(sched.job(1)->consecutive_failures, 2);
}

TEST_F(SchedulerTest, TimeZoneChangeMovesCronDueTimes) {
    sched.upsert(view(1, "0 12 * * *"));
    EXPECT_EQ(sched.job(1)->next_due, make_utc(2024, 1, 1, 12));
    sched.set_time_zone(std::make_shared<mv::FixedOffsetZone>(-5 * 3600));
    EXPECT_EQ(sched.job(1)->next_due, make_utc(2024, 1, 1, 17));
    sched.set_time_zone(nullptr);
    EXPECT_EQ(sched.job(1)->next_due, make_utc(2024, 1, 1, 12));
}

TEST_F(SchedulerTest, CronAcrossDaylightSavingTime) {
    // New York: 2024-03-10 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    sched.set_time_zone(std::make_shared<mv::TransitionZone>(
        -5 * 3600,
        std::vector<mv::TransitionZone::Transition>{{make_utc(2024, 3, 10, 7), -4 * 3600}}));
    clock.t = make_utc(2024, 3, 9, 12);
    sched.upsert(view(1, "30 2 * * *"));
    EXPECT_EQ(sched.job(1)->next_due, make_utc(2024, 3, 10, 7));  // 03:00 EDT
    tick_at(make_utc(2024, 3, 10, 7));
    ASSERT_EQ(launcher.launched.size(), 1u);
    clock.advance(kMinute);
    sched.finished(1, true, clock.t);
    EXPECT_EQ(sched.job(1)->next_due, make_utc(2024, 3, 11, 6, 30));  // 02:30 EDT
}

TEST_F(SchedulerTest, SetMaxWorkers) {
    for (ViewId id = 1; id <= 4; id++) sched.upsert(view(id, "1 hour"));
    sched.set_max_workers(0);
    EXPECT_EQ(sched.tick(), 60 * kSecond);
    EXPECT_TRUE(launcher.launched.empty());
    sched.set_max_workers(3);
    sched.tick();
    EXPECT_EQ(launcher.launched.size(), 3u);
    sched.set_max_workers(1);
    sched.finished(1, true, clock.t);
    sched.tick();
    EXPECT_EQ(launcher.launched.size(), 3u);  // still 2 running, over the new limit
}

TEST(SchedulerDeterminism, SameSeedSameRuns) {
    // Two schedulers with the same seed and inputs start the same runs at the same times.
    auto run = [](uint64_t seed) {
        FakeClock clock;
        FakeLauncher launcher;
        Scheduler s(clock, launcher, SchedulerOptions{}, nullptr, mv::seeded_random(seed));
        ViewConfig c = view(1, "1 second");
        s.upsert(c);
        std::vector<TimePoint> starts;
        for (int i = 0; i < 200; i++) {
            const size_t before = launcher.launched.size();
            const Duration nap = s.tick();
            if (launcher.launched.size() > before) {
                starts.push_back(clock.t);
                s.finished(1, false, clock.t);
            } else {
                clock.advance(nap);
            }
        }
        return starts;
    };
    EXPECT_EQ(run(11), run(11));
    EXPECT_NE(run(11), run(12));
}

TEST(SchedulerSimulation, InvariantsHoldOverADayOfRandomWork) {
    // 40 views with random schedules, durations and failures, over a simulated day, with the
    // worker sleeping exactly as long as tick() says (or until a run ends).
    FakeClock clock;
    FakeLauncher launcher;
    SchedulerOptions options;
    options.max_workers = 4;
    options.max_nap = 30 * kSecond;
    Scheduler sched(clock, launcher, options, nullptr, mv::seeded_random(2024));
    mv::Random rnd = mv::seeded_random(77);
    const char* schedules[] = {"30 seconds",   "1 minute", "5 minutes",    "*/2 * * * *",
                               "*/15 * * * *", "@hourly",  "7,37 * * * *", "10 minutes"};
    std::map<ViewId, Duration> duration;
    std::map<ViewId, double> failure_rate;
    for (ViewId id = 1; id <= 40; id++) {
        ViewConfig c = view(id, schedules[id % 8]);
        c.retry = mv::RetryPolicy{2, 5 * kSecond, 10 * kMinute};
        sched.upsert(c);
        duration[id] = static_cast<Duration>(rnd() * 3 * kMinute) + kSecond;
        failure_rate[id] = id % 5 == 0 ? 1.0 : rnd() * 0.2;
    }
    for (int q = 0; q < 50; q++)
        sched.enqueue(100 + q % 7, "public.adhoc", 10000 + q,
                      kT0 + static_cast<Duration>(rnd() * 20 * kHour));

    struct Running {
        TimePoint ends;
        bool ok;
    };
    std::map<ViewId, Running> running;
    std::map<ViewId, TimePoint> last_finish;
    std::map<ViewId, bool> last_ok;
    std::set<mv::sched::RunId> queued_started;
    size_t seen = 0;
    int max_concurrent = 0;
    const TimePoint end = kT0 + 24 * kHour;
    while (clock.t < end) {
        const Duration nap = sched.tick();
        ASSERT_GT(nap, 0);
        for (; seen < launcher.launched.size(); seen++) {
            const Launch& l = launcher.launched[seen];
            ASSERT_EQ(running.count(l.view_id), 0u) << "two runs of view " << l.view_id;
            ASSERT_LE(l.due, clock.t);
            if (l.kind == RunKind::kQueued) {
                ASSERT_TRUE(queued_started.insert(*l.run_id).second) << "run started twice";
            } else {
                const ViewConfig c = view(l.view_id, schedules[l.view_id % 8]);
                // A regular run of an interval view never starts before interval after the
                // view's last finish.
                if (l.kind == RunKind::kScheduled && c.schedule->is_interval() &&
                    last_finish.count(l.view_id)) {
                    ASSERT_GE(clock.t, last_finish[l.view_id] + c.schedule->interval());
                }
                // After a failure, a view never starts sooner than 2.5 s (half the base delay).
                if (last_finish.count(l.view_id) && !last_ok[l.view_id]) {
                    ASSERT_GE(clock.t - last_finish[l.view_id], 2500 * mv::kMillisecond);
                }
            }
            running[l.view_id] = {
                clock.t + (l.kind == RunKind::kQueued ? kSecond : duration[l.view_id]),
                l.kind == RunKind::kQueued || rnd() >= failure_rate[l.view_id]};
        }
        max_concurrent = std::max(max_concurrent, static_cast<int>(running.size()));
        ASSERT_LE(static_cast<int>(running.size()), options.max_workers);
        ASSERT_EQ(sched.running_count(), static_cast<int>(running.size()));
        // Sleep until the nap ends or a run ends, whichever is first.
        TimePoint wake = clock.t + nap;
        for (const auto& [id, r] : running) wake = std::min(wake, r.ends);
        clock.t = wake;
        for (auto it = running.begin(); it != running.end();) {
            if (it->second.ends <= clock.t) {
                const bool queued = sched.job(it->first)->running->kind == RunKind::kQueued;
                ASSERT_TRUE(sched.finished(it->first, it->second.ok, clock.t));
                if (!queued) {
                    last_finish[it->first] = clock.t;
                    last_ok[it->first] = it->second.ok;
                }
                it = running.erase(it);
            } else {
                ++it;
            }
        }
    }
    EXPECT_EQ(max_concurrent, options.max_workers);  // the workers were used
    // Queued runs due before the last few hours all ran.
    EXPECT_GE(queued_started.size(), 40u);
    // The always-failing views (every 5th) ran far less often than the healthy ones.
    EXPECT_LT(launcher.of(5).size(), launcher.of(1).size());
    EXPECT_GE(sched.job(5)->consecutive_failures, 10);
}

TEST(SchedulerSimulation, DueRunsStartOnTimeWhenWorkersAreFree) {
    // With free workers and the worker sleeping exactly the returned nap, every scheduled run
    // starts exactly at its due time.
    FakeClock clock;
    FakeLauncher launcher;
    SchedulerOptions options;
    options.max_workers = 8;
    Scheduler sched(clock, launcher, options);
    sched.upsert(view(1, "*/5 * * * *"));
    sched.upsert(view(2, "17 * * * *"));
    sched.upsert(view(3, "45 seconds"));
    std::map<ViewId, TimePoint> expected;
    for (ViewId id = 1; id <= 3; id++) expected[id] = *sched.job(id)->next_due;
    size_t seen = 0;
    while (clock.t < kT0 + 3 * kHour) {
        const Duration nap = sched.tick();
        bool started = false;
        for (; seen < launcher.launched.size(); seen++) {
            const Launch& l = launcher.launched[seen];
            ASSERT_EQ(clock.t, expected[l.view_id]) << l.view_id;
            ASSERT_EQ(l.due, clock.t);
            // Runs take no time here; the worker ticks again after each end.
            sched.finished(l.view_id, true, clock.t);
            expected[l.view_id] = *sched.job(l.view_id)->next_due;
            started = true;
        }
        if (!started) clock.advance(nap);
    }
    EXPECT_EQ(launcher.of(1).size(), 35u);  // 10:05 to 12:55
    EXPECT_EQ(launcher.of(2).size(), 3u);
    EXPECT_GT(launcher.of(3).size(), 200u);
}

TEST(SchedulerOptionsTest, NonsenseOptionsCannotMakeItSpin) {
    FakeClock clock;
    FakeLauncher launcher;
    SchedulerOptions options;
    options.max_workers = -3;
    options.max_nap = 0;
    options.launch_retry_nap = -5;
    Scheduler sched(clock, launcher, options);
    sched.upsert(view(1, "1 second"));
    EXPECT_EQ(sched.tick(), mv::kMillisecond);  // no workers: the longest nap, 1 ms
    EXPECT_TRUE(launcher.launched.empty());
    sched.set_max_workers(1);
    launcher.refuse = 1;
    EXPECT_EQ(sched.tick(), mv::kMillisecond);
    sched.tick();
    EXPECT_EQ(launcher.launched.size(), 1u);
}

// ---- fairness between owners (issue 10)

namespace {

// Views owned by one owner each: view ids 100+ for owner 1, 200+ for owner 2, ...
ViewConfig owned_view(ViewId id, mv::sched::OwnerId owner, const char* schedule) {
    ViewConfig c = view(id, schedule);
    c.owner = owner;
    return c;
}

// Owners of the launches so far, in order.
std::vector<mv::sched::OwnerId> owners_of(const std::vector<Launch>& launched) {
    std::vector<mv::sched::OwnerId> out;
    for (const Launch& l : launched) out.push_back(l.owner);
    return out;
}

}  // namespace

TEST_F(SchedulerTest, PerOwnerLimitLeavesRoomForOtherOwners) {
    // Owner 1 has 20,000 queued runs over many views; owner 2's one run arrives later.
    sched.set_max_workers_per_owner(1);
    for (int i = 0; i < 20000; i++)
        sched.enqueue(1000 + i % 500, "backlog", i + 1, kT0 - kMinute + i, /*owner=*/1);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 1u);  // only one of owner 1's, though 2 workers
    EXPECT_EQ(launcher.launched[0].owner, 1);
    EXPECT_EQ(sched.running_for(1), 1);
    // Nothing else can start: owner 1 is at its limit, so the nap is not a busy loop.
    EXPECT_EQ(sched.tick(), 60 * kSecond);

    sched.enqueue(2, "public.mv_2", 50000, kT0 + kSecond, /*owner=*/2);
    EXPECT_EQ(tick_at(kT0 + kSecond), 60 * kSecond);
    ASSERT_EQ(launcher.launched.size(), 2u);
    EXPECT_EQ(launcher.launched[1].owner, 2);
    EXPECT_EQ(launcher.launched[1].run_id, 50000);
    EXPECT_EQ(launcher.launched[1].started_at, kT0 + kSecond);  // not delayed at all
}

TEST_F(SchedulerTest, RoundRobinAcrossOwnersWithoutPerOwnerLimit) {
    // No per-owner limit (0): still, the next free worker goes to the next owner in turn.
    for (int i = 0; i < 10; i++) sched.enqueue(100 + i, "a", 1 + i, kT0 - kHour, /*owner=*/1);
    for (int i = 0; i < 10; i++) sched.enqueue(200 + i, "b", 101 + i, kT0, /*owner=*/2);
    sched.tick();
    // Owner 1's runs are much older, but the two workers go to one owner each.
    EXPECT_EQ(owners_of(launcher.launched), (std::vector<mv::sched::OwnerId>{1, 2}));
    // Owner 1's long job keeps running; owner 2's jobs end one after another: every free worker
    // alternates between owners, so owner 1's backlog gets its turn and owner 2 its next one.
    sched.finished(200, true, kT0 + kSecond);
    tick_at(kT0 + kSecond);
    EXPECT_EQ(launcher.launched.back().owner, 1);
    sched.finished(launcher.launched.back().view_id, true, kT0 + 2 * kSecond);
    tick_at(kT0 + 2 * kSecond);
    EXPECT_EQ(launcher.launched.back().owner, 2);
    EXPECT_EQ(owners_of(launcher.launched), (std::vector<mv::sched::OwnerId>{1, 2, 1, 2}));
}

TEST_F(SchedulerTest, LongJobsOfOneOwnerDelayAnotherByAtMostOneJob) {
    // Owner 1 fills both workers with long runs (no per-owner limit); owner 2's scheduled run
    // becomes due. It starts as soon as the first of owner 1's runs ends, before owner 1's
    // older backlog.
    for (int i = 0; i < 5; i++) sched.enqueue(100 + i, "a", 1 + i, kT0 - kHour, /*owner=*/1);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 2u);
    sched.upsert(owned_view(2, 2, "1 hour"));         // due now
    EXPECT_EQ(tick_at(kT0 + kSecond), 60 * kSecond);  // all busy
    EXPECT_EQ(launcher.launched.size(), 2u);
    sched.finished(100, true, kT0 + 10 * kMinute);
    tick_at(kT0 + 10 * kMinute);
    ASSERT_EQ(launcher.launched.size(), 3u);
    EXPECT_EQ(launcher.launched[2].view_id, 2);
    EXPECT_EQ(launcher.launched[2].kind, RunKind::kScheduled);
    EXPECT_EQ(launcher.launched[2].owner, 2);
}

TEST_F(SchedulerTest, OwnerBusyElsewhereSkipsOnlyThatOwner) {
    // The launcher says owner 1 is at its cluster-wide limit (runs in another database): owner
    // 2 still starts, and the tick retries soon rather than sleeping max_nap.
    sched.enqueue(100, "a", 1, kT0, 1);
    sched.enqueue(200, "b", 2, kT0, 2);
    launcher.busy_owners = {1};
    EXPECT_EQ(sched.tick(), kSecond);  // launch_retry_nap
    EXPECT_EQ(owners_of(launcher.launched), (std::vector<mv::sched::OwnerId>{2}));
    EXPECT_EQ(sched.job(100)->queued.size(), 1u);  // still queued
    launcher.busy_owners.clear();
    tick_at(kT0 + kSecond);
    EXPECT_EQ(owners_of(launcher.launched), (std::vector<mv::sched::OwnerId>{2, 1}));
}

TEST_F(SchedulerTest, NoSlotStopsTheTickAndKeepsTheTurn) {
    // A cluster-wide refusal stops the tick; the owner whose turn it was keeps it.
    sched.enqueue(100, "a", 1, kT0, 1);
    sched.enqueue(200, "b", 2, kT0, 2);
    launcher.refuse = 1;
    EXPECT_EQ(sched.tick(), kSecond);
    EXPECT_TRUE(launcher.launched.empty());
    tick_at(kT0 + kSecond);
    EXPECT_EQ(owners_of(launcher.launched), (std::vector<mv::sched::OwnerId>{1, 2}));
}

TEST_F(SchedulerTest, PerOwnerCountsFollowFinishedRunsAndLimitChanges) {
    sched.set_max_workers_per_owner(1);
    sched.upsert(owned_view(1, 7, "1 minute"));
    sched.upsert(owned_view(2, 7, "1 minute"));
    sched.tick();
    EXPECT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(sched.running_for(7), 1);
    sched.finished(launcher.launched[0].view_id, true, kT0 + kSecond);
    EXPECT_EQ(sched.running_for(7), 0);
    tick_at(kT0 + kSecond);
    EXPECT_EQ(launcher.launched.size(), 2u);  // the other view of owner 7
    sched.set_max_workers_per_owner(0);       // no per-owner limit: both may run
    sched.finished(launcher.launched[1].view_id, true, kT0 + 2 * kSecond);
    tick_at(kT0 + kMinute + kSecond);
    EXPECT_EQ(launcher.launched.size(), 3u);
    tick_at(kT0 + kMinute + 2 * kSecond);
    EXPECT_EQ(launcher.launched.size(), 4u);
    EXPECT_EQ(sched.running_for(7), 2);
}

TEST_F(SchedulerTest, ReEnqueueingKnownRunsIsIdempotentAndMovesOwner) {
    EXPECT_TRUE(sched.enqueue(1, "a", 10, kT0 + kMinute, 1));
    EXPECT_TRUE(sched.enqueue(1, "a", 10, kT0 + kMinute, 1));  // unchanged: a no-op
    ASSERT_EQ(sched.job(1)->queued.size(), 1u);
    EXPECT_TRUE(sched.enqueue(2, "b", 10, kT0, 3));  // moved to another view and owner
    EXPECT_EQ(sched.job(1), nullptr);
    ASSERT_EQ(sched.job(2)->queued.size(), 1u);
    EXPECT_EQ(sched.job(2)->queued[0].owner, 3);
    sched.tick();
    ASSERT_EQ(launcher.launched.size(), 1u);
    EXPECT_EQ(launcher.launched[0].owner, 3);
    EXPECT_FALSE(sched.enqueue(2, "b", 10, kT0, 3));  // in progress: left alone
    EXPECT_FALSE(sched.cancel(10));
    sched.finished(2, true, kT0 + kSecond);
    EXPECT_TRUE(sched.enqueue(2, "b", 10, kT0, 3));  // a finished run id may come back
}
