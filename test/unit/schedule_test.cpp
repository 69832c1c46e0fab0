// Unit tests of schedule parsing, next due times and retry backoff (core/schedule).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/schedule.hpp"

using mv::Duration;
using mv::Error;
using mv::format_duration;
using mv::kDay;
using mv::kHour;
using mv::kMillisecond;
using mv::kMinute;
using mv::kSecond;
using mv::make_utc;
using mv::parse_interval;
using mv::parse_schedule;
using mv::RunHistory;
using mv::Schedule;
using mv::TimePoint;

namespace {

constexpr const char* kHint =
    "Use an interval such as '5 minutes' (runs that long after the previous run finished) or a "
    "cron expression such as '*/10 * * * *' or '@hourly' (wall-clock times in "
    "matviews.timezone).";

// The error parse_schedule gives, or an ErrorInfo with sqlstate "ok".
mv::ErrorInfo schedule_error(const std::string& text) {
    try {
        parse_schedule(text);
    } catch (const Error& e) {
        return e.info();
    }
    mv::ErrorInfo ok;
    ok.sqlstate = "ok";
    return ok;
}

// The error parse_interval gives, or an ErrorInfo with sqlstate "ok".
mv::ErrorInfo interval_error(const std::string& text) {
    try {
        parse_interval(text);
    } catch (const Error& e) {
        return e.info();
    }
    mv::ErrorInfo ok;
    ok.sqlstate = "ok";
    return ok;
}

// A Random that always returns r.
mv::Random constant(double r) {
    return [r] { return r; };
}

}  // namespace

// ---- intervals ----

TEST(Interval, SimpleForms) {
    struct Case {
        const char* text;
        Duration expected;
    };
    for (const Case& c : {
             Case{"30 seconds", 30 * kSecond},
             Case{"1 second", kSecond},
             Case{"5 minutes", 5 * kMinute},
             Case{"1 minute", kMinute},
             Case{"1 hour", kHour},
             Case{"2 hours 30 minutes", 2 * kHour + 30 * kMinute},
             Case{"1 day", kDay},
             Case{"3 days", 3 * kDay},
             Case{"1 week", 7 * kDay},
             Case{"90s", 90 * kSecond},
             Case{"10 min", 10 * kMinute},
             Case{"10min", 10 * kMinute},
             Case{"10 mins", 10 * kMinute},
             Case{"5m", 5 * kMinute},
             Case{"1h30m", kHour + 30 * kMinute},
             Case{"1 hr", kHour},
             Case{"2d", 2 * kDay},
             Case{"45 sec", 45 * kSecond},
             Case{"00:05:00", 5 * kMinute},
             Case{"00:05", 5 * kMinute},  // hh:mm, as PostgreSQL reads it
             Case{"01:30:15", kHour + 30 * kMinute + 15 * kSecond},
             Case{"36:00:00", 36 * kHour},
             Case{"00:00:01.5", 1500 * kMillisecond},
             Case{"1 day 02:00:00", kDay + 2 * kHour},
             Case{"1.5 hours", 90 * kMinute},
             Case{".5 minutes", 30 * kSecond},
             Case{"500 ms", 500 * kMillisecond},
             Case{"250 milliseconds", 250 * kMillisecond},
             Case{"1500000 us", 1500 * kMillisecond},
             Case{"300", 300 * kSecond},  // a bare number is seconds
             Case{"  5 Minutes  ", 5 * kMinute},
             Case{"1 HOUR", kHour},
             Case{"+5 minutes", 5 * kMinute},
             Case{"1 hour 1 hour", 2 * kHour},
         }) {
        EXPECT_EQ(parse_interval(c.text), c.expected) << c.text;
    }
}

TEST(Interval, Errors) {
    struct Case {
        const char* text;
        const char* detail_part;
    };
    for (const Case& c : {
             Case{"", "empty"},
             Case{"   ", "empty"},
             Case{"often", "Expected a number where \"often\" is."},
             Case{"-5 minutes", "must be positive"},
             Case{"5 minutes ago", "\"ago\""},
             Case{"1 hour -5 minutes", "Signs inside an interval"},
             Case{"0 seconds", "must be positive"},
             Case{"0", "must be positive"},
             Case{"1 month", "Months and years have no fixed length"},
             Case{"2 years", "Months and years have no fixed length"},
             Case{"1 mon", "Months and years have no fixed length"},
             Case{"5 fortnights", "\"fortnights\" is not a unit"},
             Case{"5 minutes 10", "A number needs a unit"},
             Case{"10 5", "A number needs a unit"},
             Case{"00:60", "minutes of hh:mm:ss must be below 60"},
             Case{"00:05:60", "seconds of hh:mm:ss must be below 60"},
             Case{"00:", "minutes of hh:mm:ss are missing"},
             Case{"01:00 02:00", "Only one hh:mm:ss"},
             Case{"1.5:00", "whole number"},
             Case{"1e3 s", "\"e\" is not a unit"},
             Case{"5 minutes!", "Expected a number where \"!\" is."},
             Case{"5 min\xc3\xbctes", "\"min\xc3\xbctes\" is not a unit"},
             Case{"5 \xc3\xa9", "\"\xc3\xa9\" is not a unit"},
             Case{"\xc3\xa9 5", "Expected a number where \"\xc3\xa9\" is."},
             Case{".", "\".\" is not a number."},
             Case{"36600 days", "at most 100 years"},
             Case{"9999999999999 weeks", "at most 100 years"},
             Case{"9999999999999999 s", "too large"},
         }) {
        mv::ErrorInfo e = interval_error(c.text);
        EXPECT_EQ(e.sqlstate, "22023") << c.text;
        EXPECT_EQ(e.message, std::string("invalid interval \"") + c.text + "\"");
        EXPECT_NE(e.detail.find(c.detail_part), std::string::npos)
            << c.text << " gave: " << e.detail;
        EXPECT_FALSE(e.hint.empty());
    }
}

TEST(Interval, FormatDuration) {
    EXPECT_EQ(format_duration(30 * kSecond), "30 seconds");
    EXPECT_EQ(format_duration(kSecond), "1 second");
    EXPECT_EQ(format_duration(90 * kSecond), "1 minute 30 seconds");
    EXPECT_EQ(format_duration(5 * kMinute), "5 minutes");
    EXPECT_EQ(format_duration(2 * kHour + 30 * kMinute), "2 hours 30 minutes");
    EXPECT_EQ(format_duration(kDay), "1 day");
    EXPECT_EQ(format_duration(kDay + kHour + kMinute + kSecond), "1 day 1 hour 1 minute 1 second");
    EXPECT_EQ(format_duration(14 * kDay), "14 days");
    EXPECT_EQ(format_duration(1500 * kMillisecond), "1.5 seconds");
    EXPECT_EQ(format_duration(kMinute + 250 * kMillisecond), "1 minute 0.25 seconds");
    EXPECT_EQ(format_duration(1), "0.000001 seconds");
    EXPECT_EQ(format_duration(0), "0 seconds");
    EXPECT_EQ(format_duration(-5 * kMinute), "-5 minutes");
}

TEST(Interval, FormatParsesBack) {
    for (Duration d = kSecond; d < 3 * kDay; d = d * 3 + 7 * kMillisecond)
        EXPECT_EQ(parse_interval(format_duration(d)), d) << format_duration(d);
}

// ---- schedules ----

TEST(ParseSchedule, IntervalForms) {
    for (const char* text : {"30 seconds", "5 minutes", "1 hour", "2 hours 30 minutes", "1 day",
                             "90s", "10 min", "00:05:00", "1 second", "1h30m", "300"}) {
        Schedule s = parse_schedule(text);
        EXPECT_TRUE(s.is_interval()) << text;
        EXPECT_FALSE(s.is_cron()) << text;
        EXPECT_EQ(s.interval(), parse_interval(text)) << text;
    }
}

TEST(ParseSchedule, CronForms) {
    for (const char* text :
         {"*/10 * * * *", "@hourly", "@DAILY", "@annually", "0 0 13 * 5", "1 2 3 4 5",
          "0 9 * * mon-fri", "  0   0 * * *  ", "5,35 1 * jan sun"}) {
        Schedule s = parse_schedule(text);
        EXPECT_TRUE(s.is_cron()) << text;
        EXPECT_EQ(s.cron_expr(), mv::CronExpr::parse(text)) << text;
    }
}

TEST(ParseSchedule, FiveWordIntervalIsStillAnInterval) {
    // Five fields of cron characters that are not cron but are an interval.
    Schedule s = parse_schedule("1 hour 30 min 5s");
    ASSERT_TRUE(s.is_interval());
    EXPECT_EQ(s.interval(), kHour + 30 * kMinute + 5 * kSecond);
}

TEST(ParseSchedule, CanonicalText) {
    EXPECT_EQ(parse_schedule("90s").to_string(), "1 minute 30 seconds");
    EXPECT_EQ(parse_schedule("00:05:00").to_string(), "5 minutes");
    EXPECT_EQ(parse_schedule("2 hours 30 minutes").to_string(), "2 hours 30 minutes");
    EXPECT_EQ(parse_schedule("*/10  *  * * *").to_string(), "*/10 * * * *");
    EXPECT_EQ(parse_schedule("@annually").to_string(), "@yearly");
    EXPECT_EQ(parse_schedule("0 9 * * MON-FRI").to_string(), "0 9 * * mon-fri");
    // The canonical text parses back to the same schedule.
    for (const char* text : {"90s", "1.5 hours", "@midnight", "0 0 13 * FRI", "1 day 02:00"})
        EXPECT_EQ(parse_schedule(parse_schedule(text).to_string()), parse_schedule(text));
}

TEST(ParseSchedule, ErrorsShowBothForms) {
    struct Case {
        const char* text;
        const char* detail_part;
    };
    for (const Case& c : {
             Case{"", "empty"},
             Case{"  ", "empty"},
             Case{"often", "Expected a number"},
             Case{"0 seconds", "must be positive"},
             Case{"500 ms", "at least 1 second"},
             Case{"0.5 seconds", "at least 1 second"},
             Case{"-5 minutes", "must be positive"},
             Case{"1 month", "'@monthly'"},
             Case{"61 * * * *", "minute field \"61\": 61 is out of range 0-59."},
             Case{"* * * 13 *", "month field"},
             Case{"* * * * 8", "day-of-week field"},
             Case{"* * * *", "this one has 4"},
             Case{"*/5 * * * * *", "this one has 6"},
             Case{"0 0 30 2 *", "never fires"},
             Case{"@sometimes", "not a known macro"},
             Case{"@reboot", "@reboot is not supported"},
             Case{"@ 5 minutes", "\"@\" is not a known macro"},
             Case{"@daily 5", "stands alone"},
             Case{"1 2 3 4 x", "day-of-week field \"x\""},
         }) {
        mv::ErrorInfo e = schedule_error(c.text);
        EXPECT_EQ(e.sqlstate, "22023") << c.text;
        EXPECT_EQ(e.message, std::string("invalid schedule \"") + c.text + "\"");
        EXPECT_NE(e.detail.find(c.detail_part), std::string::npos)
            << c.text << " gave: " << e.detail;
        EXPECT_EQ(e.hint, kHint) << c.text;
    }
}

TEST(ParseSchedule, EveryChecksBounds) {
    EXPECT_THROW(Schedule::every(999 * kMillisecond), Error);
    EXPECT_THROW(Schedule::every(0), Error);
    EXPECT_THROW(Schedule::every(-kSecond), Error);
    EXPECT_THROW(Schedule::every(mv::kMaxInterval + 1), Error);
    EXPECT_EQ(Schedule::every(kSecond).interval(), kSecond);
    try {
        Schedule::every(0);
    } catch (const Error& e) {
        EXPECT_EQ(e.sqlstate(), "22023");
        EXPECT_EQ(e.info().hint, kHint);
    }
}

TEST(ParseSchedule, Equality) {
    EXPECT_EQ(parse_schedule("5 minutes"), parse_schedule("00:05:00"));
    EXPECT_NE(parse_schedule("5 minutes"), parse_schedule("6 minutes"));
    EXPECT_EQ(parse_schedule("@daily"), parse_schedule("0 0 * * *"));
    EXPECT_NE(parse_schedule("@daily"), parse_schedule("1 day"));
}

// ---- next due ----

TEST(NextDue, IntervalCountsFromTheFinish) {
    const Schedule s = parse_schedule("10 minutes");
    const TimePoint now = make_utc(2024, 1, 1, 12);
    // Never run: due now.
    EXPECT_EQ(mv::next_due(s, RunHistory{}, now, mv::utc_zone()), now);
    // A run from 10:00 to 10:25 (longer than the interval): due 10 minutes after it finished.
    RunHistory h{make_utc(2024, 1, 1, 10), make_utc(2024, 1, 1, 10, 25)};
    EXPECT_EQ(mv::next_due(s, h, now, mv::utc_zone()), make_utc(2024, 1, 1, 10, 35));
    // Started but never finished (e.g. running): due now.
    RunHistory started{make_utc(2024, 1, 1, 11, 59), std::nullopt};
    EXPECT_EQ(mv::next_due(s, started, now, mv::utc_zone()), now);
}

TEST(NextDue, CronNeverRunIsTheNextTick) {
    const Schedule s = parse_schedule("*/10 * * * *");
    EXPECT_EQ(mv::next_due(s, RunHistory{}, make_utc(2024, 1, 1, 10, 3), mv::utc_zone()),
              make_utc(2024, 1, 1, 10, 10));
    EXPECT_EQ(mv::next_due(s, RunHistory{}, make_utc(2024, 1, 1, 10, 10), mv::utc_zone()),
              make_utc(2024, 1, 1, 10, 20));
}

TEST(NextDue, MissedCronTicksCollapseIntoOneRun) {
    const Schedule s = parse_schedule("*/10 * * * *");
    // Last run started at 10:00; the worker was down until 10:47: one run is due (the 10:10
    // tick, already past), not four.
    const TimePoint now = make_utc(2024, 1, 1, 10, 47);
    RunHistory h{make_utc(2024, 1, 1, 10), make_utc(2024, 1, 1, 10, 1)};
    const TimePoint due = mv::next_due(s, h, now, mv::utc_zone());
    EXPECT_EQ(due, make_utc(2024, 1, 1, 10, 10));
    EXPECT_LE(due, now);
    // Once that run starts (now), the next is the next future tick.
    RunHistory after{now, now + kMinute};
    EXPECT_EQ(mv::next_due(s, after, now + kMinute, mv::utc_zone()), make_utc(2024, 1, 1, 10, 50));
}

TEST(NextDue, CronUsesTheTimeZone) {
    const Schedule s = parse_schedule("0 9 * * *");
    mv::FixedOffsetZone tokyo(9 * 3600);
    EXPECT_EQ(mv::next_due(s, RunHistory{}, make_utc(2024, 1, 1), tokyo),
              make_utc(2024, 1, 2, 0));  // 09:00 +09
    EXPECT_EQ(mv::next_due(s, RunHistory{}, make_utc(2024, 1, 1), mv::utc_zone()),
              make_utc(2024, 1, 1, 9));
}

TEST(NextDue, CronFallsBackToTheFinish) {
    const Schedule s = parse_schedule("@hourly");
    RunHistory h{std::nullopt, make_utc(2024, 1, 1, 10, 30)};
    EXPECT_EQ(mv::next_due(s, h, make_utc(2024, 1, 1, 12), mv::utc_zone()),
              make_utc(2024, 1, 1, 11));
}

// ---- retry backoff ----

TEST(Backoff, SeededRandomIsDeterministicAndInRange) {
    mv::Random a = mv::seeded_random(42);
    mv::Random b = mv::seeded_random(42);
    mv::Random c = mv::seeded_random(43);
    std::set<double> seen;
    bool differs = false;
    for (int i = 0; i < 10000; i++) {
        const double x = a();
        EXPECT_EQ(x, b());
        differs = differs || x != c();
        ASSERT_GE(x, 0.0);
        ASSERT_LT(x, 1.0);
        seen.insert(x);
    }
    EXPECT_TRUE(differs);
    EXPECT_GT(seen.size(), 9990u);
    // The first value of seed 42 is fixed forever (cross-platform determinism).
    EXPECT_DOUBLE_EQ(mv::seeded_random(42)(), mv::seeded_random(42)());
}

TEST(Backoff, CeilingDoublesUpToTheCap) {
    const Duration base = 30 * kSecond;
    const Duration cap = kHour;
    EXPECT_EQ(mv::backoff_ceiling(0, base, cap), 0);
    EXPECT_EQ(mv::backoff_ceiling(-3, base, cap), 0);
    EXPECT_EQ(mv::backoff_ceiling(1, base, cap), 30 * kSecond);
    EXPECT_EQ(mv::backoff_ceiling(2, base, cap), kMinute);
    EXPECT_EQ(mv::backoff_ceiling(3, base, cap), 2 * kMinute);
    EXPECT_EQ(mv::backoff_ceiling(7, base, cap), 32 * kMinute);
    EXPECT_EQ(mv::backoff_ceiling(8, base, cap), kHour);
    EXPECT_EQ(mv::backoff_ceiling(1000000, base, cap), kHour);
    // A base below 1 second is raised; a cap below the base is raised to it.
    EXPECT_EQ(mv::backoff_ceiling(1, 1, cap), kSecond);
    EXPECT_EQ(mv::backoff_ceiling(5, kMinute, kSecond), kMinute);
}

TEST(Backoff, EqualJitterBounds) {
    const mv::RetryPolicy p{3, 10 * kSecond, 10 * kMinute};
    mv::Random random = mv::seeded_random(7);
    for (int f = 1; f <= 20; f++) {
        const Duration c = mv::backoff_ceiling(f, p.base_delay, p.max_delay);
        Duration lo = c;
        Duration hi = 0;
        for (int i = 0; i < 2000; i++) {
            const Duration d = mv::retry_delay(f, p, random);
            ASSERT_GE(d, c / 2) << f;
            ASSERT_LE(d, c) << f;
            lo = std::min(lo, d);
            hi = std::max(hi, d);
        }
        // The jitter really spreads over the upper half.
        EXPECT_LT(lo, c / 2 + c / 20) << f;
        EXPECT_GT(hi, c - c / 20) << f;
    }
    EXPECT_EQ(mv::retry_delay(1, p, constant(0.0)), 5 * kSecond);
    EXPECT_EQ(mv::retry_delay(3, p, constant(0.5)), 30 * kSecond);
    EXPECT_EQ(mv::retry_delay(1, p, constant(1.0)), 10 * kSecond);  // clamped to the ceiling
    EXPECT_EQ(mv::retry_delay(1, p, constant(-4.0)), 5 * kSecond);  // clamped to the floor
    EXPECT_EQ(mv::retry_delay(1, p, nullptr), 5 * kSecond);         // no jitter source
    EXPECT_EQ(mv::retry_delay(0, p, constant(0.5)), 0);
}

TEST(Backoff, GrowsMonotonicallyUntilTheCap) {
    // Below the cap, with any random values, the delay after n+1 failures is at least the one
    // after n: the ranges [c/2, c] and [c, 2c] do not overlap. At the cap, it stays in
    // [cap/2, cap].
    const mv::RetryPolicy p{3, kSecond, kHour};
    mv::Random random = mv::seeded_random(99);
    for (int trial = 0; trial < 200; trial++) {
        Duration previous = 0;
        for (int f = 1; f <= 30; f++) {
            const Duration d = mv::retry_delay(f, p, random);
            if (mv::backoff_ceiling(f, p.base_delay, p.max_delay) < p.max_delay) {
                ASSERT_GE(d, previous) << "trial " << trial << " failure " << f;
                previous = d;
            } else {
                ASSERT_GE(d, p.max_delay / 2);
                ASSERT_LE(d, p.max_delay);
            }
        }
    }
    // The ceiling and the floor of the range never decrease.
    for (int f = 1; f < 40; f++)
        EXPECT_LE(mv::backoff_ceiling(f, p.base_delay, p.max_delay),
                  mv::backoff_ceiling(f + 1, p.base_delay, p.max_delay));
    // With the same random value, non-decreasing throughout and strictly growing below the cap.
    for (int f = 1; f < 40; f++)
        EXPECT_LE(mv::retry_delay(f, p, constant(0.3)), mv::retry_delay(f + 1, p, constant(0.3)));
    for (int f = 1; f < 12; f++)
        EXPECT_LT(mv::retry_delay(f, p, constant(0.3)), mv::retry_delay(f + 1, p, constant(0.3)));
}

TEST(Backoff, DeterministicWithASeed) {
    const mv::RetryPolicy p;
    mv::Random a = mv::seeded_random(5);
    mv::Random b = mv::seeded_random(5);
    for (int f = 1; f < 50; f++) EXPECT_EQ(mv::retry_delay(f, p, a), mv::retry_delay(f, p, b));
}

TEST(Backoff, NeverFasterThanHalfTheBase) {
    // Whatever the failure count, a retry waits at least half the (at least 1 s) base delay.
    mv::Random random = mv::seeded_random(3);
    for (Duration base : {Duration{1}, kSecond, 30 * kSecond})
        for (int f = 1; f < 100; f++)
            ASSERT_GE(mv::retry_delay(f, base, kHour, random), std::max(base, kSecond) / 2);
}
