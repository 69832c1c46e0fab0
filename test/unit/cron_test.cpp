// Unit tests of calendar arithmetic, time zones and cron expressions (core/cron).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/cron.hpp"
#include "core/error.hpp"

using mv::CronExpr;
using mv::Error;
using mv::FixedOffsetZone;
using mv::kHour;
using mv::kMinute;
using mv::kSecond;
using mv::LocalResolution;
using mv::LocalTime;
using mv::make_utc;
using mv::TimePoint;
using mv::TransitionZone;
using mv::utc_zone;

namespace {

// The error a cron expression gives, or an ErrorInfo with sqlstate "ok".
mv::ErrorInfo cron_error(const std::string& text) {
    try {
        CronExpr::parse(text);
    } catch (const Error& e) {
        return e.info();
    }
    mv::ErrorInfo ok;
    ok.sqlstate = "ok";
    return ok;
}

// The next n ticks after t, formatted in UTC.
std::vector<std::string> ticks(const std::string& expr, TimePoint t, int n,
                               const mv::TimeZone& tz = utc_zone()) {
    CronExpr e = CronExpr::parse(expr);
    std::vector<std::string> out;
    for (int i = 0; i < n; i++) {
        t = e.next_after(t, tz);
        out.push_back(mv::format_utc(t));
    }
    return out;
}

// The first tick after t, formatted in UTC.
std::string next(const std::string& expr, TimePoint t, const mv::TimeZone& tz = utc_zone()) {
    return ticks(expr, t, 1, tz)[0];
}

LocalTime local(int y, int mo, int d, int h, int mi, int s = 0) {
    LocalTime t;
    t.year = y;
    t.month = mo;
    t.day = d;
    t.hour = h;
    t.minute = mi;
    t.second = s;
    return t;
}

// A zone like America/New_York in 2024: EST (-5) until 2024-03-10 07:00 UTC (02:00 local jumps
// to 03:00), EDT (-4) until 2024-11-03 06:00 UTC (02:00 local goes back to 01:00), then EST.
const TransitionZone& new_york_2024() {
    static const TransitionZone zone(
        -5 * 3600, {{make_utc(2024, 3, 10, 7), -4 * 3600}, {make_utc(2024, 11, 3, 6), -5 * 3600}});
    return zone;
}
const TimePoint kSpringForward = make_utc(2024, 3, 10, 7);
const TimePoint kFallBack = make_utc(2024, 11, 3, 6);

}  // namespace

// ---- calendar ----

TEST(Calendar, DaysFromCivil) {
    EXPECT_EQ(mv::days_from_civil(1970, 1, 1), 0);
    EXPECT_EQ(mv::days_from_civil(1969, 12, 31), -1);
    EXPECT_EQ(mv::days_from_civil(2000, 3, 1), 11017);
    EXPECT_EQ(mv::days_from_civil(2024, 2, 29) + 1, mv::days_from_civil(2024, 3, 1));
    EXPECT_EQ(mv::days_from_civil(2100, 2, 28) + 1, mv::days_from_civil(2100, 3, 1));
}

TEST(Calendar, DaysInMonth) {
    EXPECT_EQ(mv::days_in_month(2024, 2), 29);
    EXPECT_EQ(mv::days_in_month(2023, 2), 28);
    EXPECT_EQ(mv::days_in_month(2000, 2), 29);
    EXPECT_EQ(mv::days_in_month(2100, 2), 28);
    EXPECT_EQ(mv::days_in_month(2024, 4), 30);
    EXPECT_EQ(mv::days_in_month(2024, 12), 31);
}

TEST(Calendar, NaiveRoundTripAndWeekday) {
    // Every 7 hours and 13 seconds over about 60 years, both sides of 1970.
    for (int64_t n = -900000000; n < 1000000000; n += 7 * 3600 + 13) {
        LocalTime t = mv::local_from_naive(n);
        ASSERT_EQ(mv::naive_seconds(t), n);
    }
    EXPECT_EQ(mv::local_from_naive(0).weekday, 4);                              // Thursday
    EXPECT_EQ(mv::utc_zone().to_local(make_utc(2024, 1, 1)).weekday, 1);        // Monday
    EXPECT_EQ(mv::utc_zone().to_local(make_utc(1969, 12, 28)).weekday, 0);      // Sunday
    EXPECT_EQ(mv::utc_zone().to_local(make_utc(2024, 12, 13, 23)).weekday, 5);  // Friday
}

TEST(Calendar, FormatUtc) {
    EXPECT_EQ(mv::format_utc(make_utc(2024, 3, 10, 7, 5, 9)), "2024-03-10 07:05:09Z");
    EXPECT_EQ(mv::format_utc(make_utc(2024, 3, 10) + 1500), "2024-03-10 00:00:00.001500Z");
    EXPECT_EQ(mv::format_utc(-1), "1969-12-31 23:59:59.999999Z");
}

// ---- time zones ----

TEST(TimeZones, UtcAndFixedOffset) {
    const TimePoint t = make_utc(2024, 6, 1, 12, 30);
    EXPECT_EQ(utc_zone().to_local(t), local(2024, 6, 1, 12, 30));
    FixedOffsetZone plus_0545(5 * 3600 + 45 * 60);
    EXPECT_EQ(plus_0545.to_local(t), local(2024, 6, 1, 18, 15));
    EXPECT_EQ(plus_0545.offset_seconds(t), 5 * 3600 + 45 * 60);
    LocalResolution r = plus_0545.to_utc(local(2024, 6, 1, 18, 15));
    EXPECT_EQ(r.kind, LocalResolution::Kind::kUnique);
    EXPECT_EQ(r.first, t);
    FixedOffsetZone minus_10(-10 * 3600);
    EXPECT_EQ(minus_10.to_local(t), local(2024, 6, 1, 2, 30));
}

TEST(TimeZones, ProbingResolutionWithoutTransitions) {
    TransitionZone plus_two(2 * 3600, {});
    LocalResolution r = plus_two.to_utc(local(2024, 6, 1, 14, 0));
    EXPECT_EQ(r.kind, LocalResolution::Kind::kUnique);
    EXPECT_EQ(r.first, make_utc(2024, 6, 1, 12));
}

TEST(TimeZones, ResolvesSpringForwardGap) {
    const auto& ny = new_york_2024();
    LocalResolution r = ny.to_utc(local(2024, 3, 10, 2, 30));
    EXPECT_EQ(r.kind, LocalResolution::Kind::kSkipped);
    EXPECT_EQ(mv::format_utc(r.first), "2024-03-10 07:00:00Z");  // 03:00 EDT
    r = ny.to_utc(local(2024, 3, 10, 2, 0));
    EXPECT_EQ(r.kind, LocalResolution::Kind::kSkipped);
    EXPECT_EQ(r.first, kSpringForward);
    r = ny.to_utc(local(2024, 3, 10, 1, 59, 59));
    EXPECT_EQ(r.kind, LocalResolution::Kind::kUnique);
    EXPECT_EQ(r.first, kSpringForward - kSecond);
    r = ny.to_utc(local(2024, 3, 10, 3, 0));
    EXPECT_EQ(r.kind, LocalResolution::Kind::kUnique);
    EXPECT_EQ(r.first, kSpringForward);
}

TEST(TimeZones, ResolvesFallBackFold) {
    const auto& ny = new_york_2024();
    LocalResolution r = ny.to_utc(local(2024, 11, 3, 1, 30));
    EXPECT_EQ(r.kind, LocalResolution::Kind::kRepeated);
    EXPECT_EQ(mv::format_utc(r.first), "2024-11-03 05:30:00Z");   // 01:30 EDT
    EXPECT_EQ(mv::format_utc(r.second), "2024-11-03 06:30:00Z");  // 01:30 EST
    r = ny.to_utc(local(2024, 11, 3, 0, 59));
    EXPECT_EQ(r.kind, LocalResolution::Kind::kUnique);
    r = ny.to_utc(local(2024, 11, 3, 2, 0));
    EXPECT_EQ(r.kind, LocalResolution::Kind::kUnique);
    EXPECT_EQ(mv::format_utc(r.first), "2024-11-03 07:00:00Z");
}

TEST(TimeZones, ResolvesHalfHourGap) {
    // Like Australia/Lord_Howe: +10:30, then +11:00 from 02:00 local (15:30 UTC).
    TransitionZone lord_howe(10 * 3600 + 1800, {{make_utc(2024, 10, 5, 15, 30), 11 * 3600}});
    LocalResolution r = lord_howe.to_utc(local(2024, 10, 6, 2, 15));
    EXPECT_EQ(r.kind, LocalResolution::Kind::kSkipped);
    EXPECT_EQ(lord_howe.to_local(r.first), local(2024, 10, 6, 2, 30));
}

TEST(TimeZones, TransitionsMustIncrease) {
    EXPECT_THROW(TransitionZone(0, {{100, 3600}, {100, 0}}), Error);
}

// ---- parsing ----

TEST(CronParse, EveryMinute) {
    EXPECT_EQ(next("* * * * *", make_utc(2024, 1, 1, 10, 0, 30)), "2024-01-01 10:01:00Z");
    EXPECT_EQ(next("* * * * *", make_utc(2024, 1, 1, 10, 0)), "2024-01-01 10:01:00Z");
    EXPECT_EQ(next("* * * * *", make_utc(2024, 1, 1, 10, 0) - 1), "2024-01-01 10:00:00Z");
}

TEST(CronParse, NumbersRangesStepsLists) {
    const TimePoint t = make_utc(2024, 1, 1);  // a Monday
    EXPECT_EQ(ticks("5 4 * * *", t, 2),
              (std::vector<std::string>{"2024-01-01 04:05:00Z", "2024-01-02 04:05:00Z"}));
    EXPECT_EQ(ticks("0 9-11 * * *", t, 4),
              (std::vector<std::string>{"2024-01-01 09:00:00Z", "2024-01-01 10:00:00Z",
                                        "2024-01-01 11:00:00Z", "2024-01-02 09:00:00Z"}));
    EXPECT_EQ(ticks("*/15 0 * * *", t, 5),
              (std::vector<std::string>{"2024-01-01 00:15:00Z", "2024-01-01 00:30:00Z",
                                        "2024-01-01 00:45:00Z", "2024-01-02 00:00:00Z",
                                        "2024-01-02 00:15:00Z"}));
    EXPECT_EQ(ticks("10-30/10 0 * * *", t, 4),
              (std::vector<std::string>{"2024-01-01 00:10:00Z", "2024-01-01 00:20:00Z",
                                        "2024-01-01 00:30:00Z", "2024-01-02 00:10:00Z"}));
    EXPECT_EQ(ticks("5/20 0 * * *", t, 4),  // a/n: from a to the maximum
              (std::vector<std::string>{"2024-01-01 00:05:00Z", "2024-01-01 00:25:00Z",
                                        "2024-01-01 00:45:00Z", "2024-01-02 00:05:00Z"}));
    EXPECT_EQ(ticks("1,5-6,*/20 0 * * *", t, 6),
              (std::vector<std::string>{"2024-01-01 00:01:00Z", "2024-01-01 00:05:00Z",
                                        "2024-01-01 00:06:00Z", "2024-01-01 00:20:00Z",
                                        "2024-01-01 00:40:00Z", "2024-01-02 00:00:00Z"}));
    EXPECT_EQ(ticks("0 0 1-31/10 * *", t, 4),
              (std::vector<std::string>{"2024-01-11 00:00:00Z", "2024-01-21 00:00:00Z",
                                        "2024-01-31 00:00:00Z", "2024-02-01 00:00:00Z"}));
    EXPECT_EQ(ticks("0 0 1 */4 *", t, 3),
              (std::vector<std::string>{"2024-05-01 00:00:00Z", "2024-09-01 00:00:00Z",
                                        "2025-01-01 00:00:00Z"}));
    EXPECT_EQ(next("0 0 * * */3", t), "2024-01-03 00:00:00Z");  // Sun, Wed, Sat
}

TEST(CronParse, LeadingZerosAndWhitespace) {
    EXPECT_EQ(CronExpr::parse("05 04 * * *"), CronExpr::parse("5 4 * * *"));
    EXPECT_EQ(CronExpr::parse("\t 5  4 *\t* *  ").to_string(), "5 4 * * *");
}

TEST(CronParse, MonthAndDayNames) {
    EXPECT_EQ(CronExpr::parse("0 0 1 jan,JUL *"), CronExpr::parse("0 0 1 1,7 *"));
    EXPECT_EQ(CronExpr::parse("0 0 * * Mon-Fri"), CronExpr::parse("0 0 * * 1-5"));
    EXPECT_EQ(CronExpr::parse("0 0 * * sun"), CronExpr::parse("0 0 * * 0"));
    EXPECT_EQ(CronExpr::parse("0 0 * * SAT"), CronExpr::parse("0 0 * * 6"));
    EXPECT_EQ(CronExpr::parse("0 0 * mar-may/2 *"), CronExpr::parse("0 0 * 3,5 *"));
    EXPECT_EQ(CronExpr::parse("0 0 * Dec *"), CronExpr::parse("0 0 * 12 *"));
    EXPECT_EQ(CronExpr::parse("0 0 * * MON-fri").to_string(), "0 0 * * mon-fri");
}

TEST(CronParse, SevenIsSunday) {
    EXPECT_EQ(CronExpr::parse("0 0 * * 7"), CronExpr::parse("0 0 * * 0"));
    EXPECT_EQ(CronExpr::parse("0 0 * * 5-7"), CronExpr::parse("0 0 * * 0,5,6"));
    EXPECT_EQ(CronExpr::parse("0 0 * * 0-7"), CronExpr::parse("0 0 * * 0-6"));
    EXPECT_EQ(next("0 12 * * 7", make_utc(2024, 1, 1)), "2024-01-07 12:00:00Z");
}

TEST(CronParse, Macros) {
    EXPECT_EQ(CronExpr::parse("@yearly"), CronExpr::parse("0 0 1 1 *"));
    EXPECT_EQ(CronExpr::parse("@annually"), CronExpr::parse("0 0 1 1 *"));
    EXPECT_EQ(CronExpr::parse("@monthly"), CronExpr::parse("0 0 1 * *"));
    EXPECT_EQ(CronExpr::parse("@weekly"), CronExpr::parse("0 0 * * 0"));
    EXPECT_EQ(CronExpr::parse("@daily"), CronExpr::parse("0 0 * * *"));
    EXPECT_EQ(CronExpr::parse("@midnight"), CronExpr::parse("0 0 * * *"));
    EXPECT_EQ(CronExpr::parse("@hourly"), CronExpr::parse("0 * * * *"));
    EXPECT_EQ(CronExpr::parse("@HOURLY"), CronExpr::parse("0 * * * *"));
    EXPECT_EQ(CronExpr::parse(" @annually ").to_string(), "@yearly");
    EXPECT_EQ(CronExpr::parse("@midnight").to_string(), "@daily");
    EXPECT_EQ(CronExpr::parse("@weekly").to_string(), "@weekly");
    EXPECT_TRUE(CronExpr::parse("@daily").fixed_time());
    EXPECT_FALSE(CronExpr::parse("@hourly").fixed_time());
    EXPECT_EQ(next("@weekly", make_utc(2024, 1, 1)), "2024-01-07 00:00:00Z");
    EXPECT_EQ(next("@yearly", make_utc(2024, 1, 1)), "2025-01-01 00:00:00Z");
}

TEST(CronParse, FieldRanges) {
    EXPECT_EQ(cron_error("59 23 31 12 7").sqlstate, "ok");
    EXPECT_EQ(cron_error("0 0 1 1 0").sqlstate, "ok");
    struct Case {
        const char* expr;
        const char* detail;
    };
    for (const Case& c : {
             Case{"60 * * * *", "minute field \"60\": 60 is out of range 0-59."},
             Case{"* 24 * * *", "hour field \"24\": 24 is out of range 0-23."},
             Case{"* * 0 * *", "day-of-month field \"0\": 0 is out of range 1-31."},
             Case{"* * 32 * *", "day-of-month field \"32\": 32 is out of range 1-31."},
             Case{"* * * 0 *", "month field \"0\": 0 is out of range 1-12."},
             Case{"* * * 13 *", "month field \"13\": 13 is out of range 1-12."},
             Case{"* * * * 8", "day-of-week field \"8\": 8 is out of range 0-7."},
             Case{"0-60 * * * *", "minute field \"0-60\": 60 is out of range 0-59."},
             Case{"1,2,99 * * * *", "minute field \"1,2,99\": 99 is out of range 0-59."},
             Case{"99999999999 * * * *",
                  "minute field \"99999999999\": 99999999999 is out of range 0-59."},
         }) {
        mv::ErrorInfo e = cron_error(c.expr);
        EXPECT_EQ(e.sqlstate, "22023") << c.expr;
        EXPECT_EQ(e.message, std::string("invalid cron expression \"") + c.expr + "\"");
        EXPECT_EQ(e.detail, c.detail);
        EXPECT_NE(e.hint.find("5 fields"), std::string::npos);
    }
}

TEST(CronParse, SyntaxErrorsNameTheFieldAndWhy) {
    struct Case {
        const char* expr;
        const char* detail_part;
    };
    for (const Case& c : {
             Case{"", "empty"},
             Case{"   ", "empty"},
             Case{"* * * *", "has 4"},
             Case{"* * * * * *", "has 6"},
             Case{"*/0 * * * *", "minute field \"*/0\": the step 0 is not between 1 and 60."},
             Case{"*/61 * * * *", "the step 61"},
             Case{"* */ * * *", "hour field \"*/\": the step after \"/\" is missing."},
             Case{"* */x * * *", "the step \"x\" is not a positive number."},
             Case{"* 5-1 * * *", "hour field \"5-1\": the range 5-1 goes backwards"},
             Case{"1,,2 * * * *", "an item of the list is empty."},
             Case{"1, * * * *", "an item of the list is empty."},
             Case{"-5 * * * *", "a number is missing."},
             Case{"5- * * * *", "a number is missing."},
             Case{"1.5 * * * *", "\"1.5\" is not a number."},
             Case{"abc * * * *", "minute field \"abc\": \"abc\" is not a number."},
             Case{"* * * * jan",
                  "day-of-week field \"jan\": \"jan\" is neither a number nor a "
                  "day name (sun-sat)."},
             Case{"* * * mon *",
                  "month field \"mon\": \"mon\" is neither a number nor a month "
                  "name (jan-dec)."},
             Case{"* * * * monday", "\"monday\" is neither"},
             Case{"@reboot", "@reboot is not supported"},
             Case{"@sometimes", "\"@sometimes\" is not a known macro"},
             Case{"@daily 5", "stands alone"},
             Case{"0 0 30 2 *", "never fires"},
             Case{"0 0 31 4,6,9,11 *", "never fires"},
             Case{"0 0 31 2 */2", "never fires"},
         }) {
        mv::ErrorInfo e = cron_error(c.expr);
        EXPECT_EQ(e.sqlstate, "22023") << c.expr;
        EXPECT_NE(e.detail.find(c.detail_part), std::string::npos)
            << c.expr << " gave: " << e.detail;
        EXPECT_FALSE(e.hint.empty());
    }
}

TEST(CronParse, RestrictedDayOfWeekMakesImpossibleDatesValid) {
    // Both day fields restricted: either matches, so 30 February never blocks it.
    EXPECT_EQ(cron_error("0 0 30 2 1").sqlstate, "ok");
    EXPECT_EQ(next("0 0 30 2 1", make_utc(2024, 1, 1)), "2024-02-05 00:00:00Z");
    EXPECT_EQ(cron_error("0 0 29 2 *").sqlstate, "ok");
}

TEST(CronParse, EqualityComparesTicksNotText) {
    EXPECT_EQ(CronExpr::parse("*/1 * * * *"), CronExpr::parse("* * * * *"));
    EXPECT_EQ(CronExpr::parse("0 0 * * 1,2,3"), CronExpr::parse("0 0 * * mon-wed"));
    EXPECT_NE(CronExpr::parse("0 0 * * *"), CronExpr::parse("0 1 * * *"));
    // A field starting with `*` differs from the same values listed: it changes the day rule
    // and the daylight-saving rule.
    EXPECT_NE(CronExpr::parse("0 0 1-31 * 1"), CronExpr::parse("0 0 * * 1"));
    EXPECT_NE(CronExpr::parse("0-59 0 * * *"), CronExpr::parse("* 0 * * *"));
    EXPECT_TRUE(CronExpr::parse("0-59 0 * * *").fixed_time());
    EXPECT_FALSE(CronExpr::parse("* 0 * * *").fixed_time());
}

// ---- next tick ----

TEST(CronNext, DayOfMonthOrDayOfWeekWhenBothRestricted) {
    // Every 13th and every Friday.
    EXPECT_EQ(ticks("0 0 13 * 5", make_utc(2024, 1, 1), 7),
              (std::vector<std::string>{"2024-01-05 00:00:00Z", "2024-01-12 00:00:00Z",
                                        "2024-01-13 00:00:00Z", "2024-01-19 00:00:00Z",
                                        "2024-01-26 00:00:00Z", "2024-02-02 00:00:00Z",
                                        "2024-02-09 00:00:00Z"}));
    EXPECT_EQ(next("0 0 13 * 5", make_utc(2024, 2, 9, 1)), "2024-02-13 00:00:00Z");
}

TEST(CronNext, OnlyTheRestrictedDayFieldCounts) {
    EXPECT_EQ(ticks("0 0 * * 5", make_utc(2024, 1, 1), 3),
              (std::vector<std::string>{"2024-01-05 00:00:00Z", "2024-01-12 00:00:00Z",
                                        "2024-01-19 00:00:00Z"}));
    EXPECT_EQ(ticks("0 0 13 * *", make_utc(2024, 1, 1), 2),
              (std::vector<std::string>{"2024-01-13 00:00:00Z", "2024-02-13 00:00:00Z"}));
    // A day field starting with `*` (a step) still requires both, as cron(8) does: odd days
    // of the month that are Mondays.
    EXPECT_EQ(ticks("0 0 */2 * mon", make_utc(2023, 12, 31), 3),
              (std::vector<std::string>{"2024-01-01 00:00:00Z", "2024-01-15 00:00:00Z",
                                        "2024-01-29 00:00:00Z"}));
}

TEST(CronNext, LeapDays) {
    EXPECT_EQ(next("0 0 29 2 *", make_utc(2023, 3, 1)), "2024-02-29 00:00:00Z");
    EXPECT_EQ(next("0 0 29 2 *", make_utc(2024, 3, 1)), "2028-02-29 00:00:00Z");
    EXPECT_EQ(next("0 0 29 2 *", make_utc(2096, 3, 1)), "2104-02-29 00:00:00Z");  // not 2100
    EXPECT_EQ(next("0 0 29 2 *", make_utc(1999, 3, 1)), "2000-02-29 00:00:00Z");
    EXPECT_EQ(next("0 0 * 2 *", make_utc(2023, 2, 28, 1)), "2024-02-01 00:00:00Z");
    EXPECT_EQ(next("0 0 * 2 *", make_utc(2024, 2, 28, 1)), "2024-02-29 00:00:00Z");
}

TEST(CronNext, MonthEnds) {
    EXPECT_EQ(ticks("0 0 31 * *", make_utc(2024, 1, 1), 7),
              (std::vector<std::string>{"2024-01-31 00:00:00Z", "2024-03-31 00:00:00Z",
                                        "2024-05-31 00:00:00Z", "2024-07-31 00:00:00Z",
                                        "2024-08-31 00:00:00Z", "2024-10-31 00:00:00Z",
                                        "2024-12-31 00:00:00Z"}));
    EXPECT_EQ(ticks("0 0 30 * *", make_utc(2024, 1, 31), 2),
              (std::vector<std::string>{"2024-03-30 00:00:00Z", "2024-04-30 00:00:00Z"}));
}

TEST(CronNext, YearRollover) {
    EXPECT_EQ(next("59 23 31 12 *", make_utc(2024, 12, 31, 23, 59)), "2025-12-31 23:59:00Z");
    EXPECT_EQ(next("*/5 * * * *", make_utc(2024, 12, 31, 23, 58)), "2025-01-01 00:00:00Z");
    EXPECT_EQ(next("0 0 1 1 *", make_utc(2024, 6, 1)), "2025-01-01 00:00:00Z");
    EXPECT_EQ(next("* * * * *", make_utc(1969, 12, 31, 23, 59, 30)), "1970-01-01 00:00:00Z");
}

TEST(CronNext, FixedOffsetZones) {
    FixedOffsetZone plus_two(2 * 3600);
    FixedOffsetZone minus_five(-5 * 3600);
    FixedOffsetZone nepal(5 * 3600 + 45 * 60);
    const TimePoint t = make_utc(2024, 1, 1);
    EXPECT_EQ(next("0 9 * * *", t, plus_two), "2024-01-01 07:00:00Z");
    EXPECT_EQ(next("0 9 * * *", t, minus_five), "2024-01-01 14:00:00Z");
    EXPECT_EQ(next("0 9 * * *", t, nepal), "2024-01-01 03:15:00Z");
    EXPECT_EQ(next("0 0 * * *", t, nepal), "2024-01-01 18:15:00Z");
    // Local midnight of 1 January in -05:00 is 05:00 UTC on the 1st.
    EXPECT_EQ(next("@yearly", make_utc(2023, 12, 31, 23), minus_five), "2024-01-01 05:00:00Z");
}

TEST(CronNext, ManyConsecutiveTicksMatchBruteForce) {
    // Each tick equals the next matching minute found by scanning every minute.
    FixedOffsetZone plus_0530(5 * 3600 + 30 * 60);
    const std::vector<const mv::TimeZone*> zones = {&utc_zone(), &plus_0530};
    for (const char* expr : {"* * * * *", "*/7 * * * *", "0 * * * *", "15,45 9-17 * * mon-fri",
                             "0 0 13 * 5", "30 2 */3 * *", "0 12 * * 0,6", "5-10/2 3 * * *",
                             "@daily", "0 0 1,15 * *", "59 23 * * *", "0 */6 * feb,mar *"}) {
        CronExpr e = CronExpr::parse(expr);
        for (const mv::TimeZone* tz : zones) {
            const TimePoint start = make_utc(2024, 2, 26, 0, 0, 17);
            const TimePoint end = make_utc(2024, 3, 6);
            TimePoint brute = start;
            TimePoint t = start;
            int count = 0;
            for (;;) {
                // Brute force: the next minute (UTC minute boundaries are local ones here).
                brute = (brute / kMinute + 1) * kMinute;
                while (!e.matches(tz->to_local(brute))) brute += kMinute;
                if (brute > end) break;
                t = e.next_after(t, *tz);
                ASSERT_EQ(mv::format_utc(t), mv::format_utc(brute)) << expr << " tick " << count;
                count++;
            }
            EXPECT_GT(count, 0) << expr;
        }
    }
}

TEST(CronNext, EveryMinuteForAWeek) {
    CronExpr e = CronExpr::parse("* * * * *");
    TimePoint t = make_utc(2024, 12, 28);
    for (int i = 1; i <= 7 * 24 * 60; i++) {
        t = e.next_after(t, utc_zone());
        ASSERT_EQ(t, make_utc(2024, 12, 28) + i * kMinute);
    }
}

// ---- daylight-saving time ----

TEST(CronDst, FixedTimeInTheGapRunsWhenTheGapEnds) {
    const auto& ny = new_york_2024();
    // 02:30 does not exist on 10 March: run at 03:00 EDT, then 02:30 EDT the next day.
    EXPECT_EQ(ticks("30 2 * * *", make_utc(2024, 3, 9, 12), 3, ny),
              (std::vector<std::string>{"2024-03-10 07:00:00Z", "2024-03-11 06:30:00Z",
                                        "2024-03-12 06:30:00Z"}));
    // Several skipped times run once.
    EXPECT_EQ(ticks("0,30 2 * * *", make_utc(2024, 3, 10, 6, 59), 2, ny),
              (std::vector<std::string>{"2024-03-10 07:00:00Z", "2024-03-11 06:00:00Z"}));
    // 03:00 itself is just 03:00 EDT.
    EXPECT_EQ(next("0 3 * * *", make_utc(2024, 3, 10), ny), "2024-03-10 07:00:00Z");
    // The day before, 02:30 EST.
    EXPECT_EQ(next("30 2 * * *", make_utc(2024, 3, 9), ny), "2024-03-09 07:30:00Z");
}

TEST(CronDst, WildcardSkipsTheGap) {
    const auto& ny = new_york_2024();
    EXPECT_EQ(ticks("30 * * * *", make_utc(2024, 3, 10, 6), 2, ny),
              (std::vector<std::string>{"2024-03-10 06:30:00Z",     // 01:30 EST
                                        "2024-03-10 07:30:00Z"}));  // 03:30 EDT
    EXPECT_EQ(ticks("*/10 * * * *", make_utc(2024, 3, 10, 6, 45), 3, ny),
              (std::vector<std::string>{"2024-03-10 06:50:00Z", "2024-03-10 07:00:00Z",
                                        "2024-03-10 07:10:00Z"}));
    // From 00:00 EST: 02:00 does not exist, so 04:00 EDT and 06:00 EDT.
    EXPECT_EQ(ticks("0 */2 * * *", make_utc(2024, 3, 10, 5), 2, ny),
              (std::vector<std::string>{"2024-03-10 08:00:00Z", "2024-03-10 10:00:00Z"}));
}

TEST(CronDst, FixedTimeRunsOnceInARepeatedHour) {
    const auto& ny = new_york_2024();
    EXPECT_EQ(ticks("30 1 * * *", make_utc(2024, 11, 2, 12), 2, ny),
              (std::vector<std::string>{"2024-11-03 05:30:00Z",     // 01:30 EDT only
                                        "2024-11-04 06:30:00Z"}));  // 01:30 EST next day
    // Asked from inside the second pass, the repeated 01:30 is not run again.
    EXPECT_EQ(next("30 1 * * *", make_utc(2024, 11, 3, 6, 10), ny), "2024-11-04 06:30:00Z");
    EXPECT_EQ(next("45 1 * * *", make_utc(2024, 11, 3, 5, 50), ny), "2024-11-04 06:45:00Z");
    EXPECT_EQ(next("0 2 * * *", make_utc(2024, 11, 3), ny), "2024-11-03 07:00:00Z");
}

TEST(CronDst, WildcardFollowsElapsedTimeThroughARepeatedHour) {
    const auto& ny = new_york_2024();
    EXPECT_EQ(ticks("*/30 * * * *", make_utc(2024, 11, 3, 4, 45), 5, ny),
              (std::vector<std::string>{"2024-11-03 05:00:00Z", "2024-11-03 05:30:00Z",
                                        "2024-11-03 06:00:00Z", "2024-11-03 06:30:00Z",
                                        "2024-11-03 07:00:00Z"}));
    EXPECT_EQ(ticks("@hourly", make_utc(2024, 11, 3, 3, 30), 4, ny),
              (std::vector<std::string>{"2024-11-03 04:00:00Z", "2024-11-03 05:00:00Z",
                                        "2024-11-03 06:00:00Z", "2024-11-03 07:00:00Z"}));
    // From the end of the first pass, the next tick is the start of the second.
    EXPECT_EQ(next("*/30 * * * *", make_utc(2024, 11, 3, 5, 45), ny), "2024-11-03 06:00:00Z");
}

namespace {

// A daylight-saving zone for the oracle: its transitions, and windows around them to check.
struct DstCase {
    const char* name;
    int64_t initial;
    std::vector<TransitionZone::Transition> transitions;
};

std::vector<DstCase> dst_cases() {
    return {
        {"New York",
         -5 * 3600,
         {{make_utc(2024, 3, 10, 7), -4 * 3600}, {make_utc(2024, 11, 3, 6), -5 * 3600}}},
        {"Berlin", 3600, {{make_utc(2024, 3, 31, 1), 7200}, {make_utc(2024, 10, 27, 1), 3600}}},
        {"Lord Howe",
         11 * 3600,
         {{make_utc(2024, 4, 6, 15), 10 * 3600 + 1800},
          {make_utc(2024, 10, 5, 15, 30), 11 * 3600}}},
        // Clocks jump at local midnight, as Brazil's did: 00:00-00:59 is skipped, and
        // 23:00-23:59 of the previous day is repeated.
        {"Midnight",
         -3 * 3600,
         {{make_utc(2018, 11, 4, 3), -2 * 3600}, {make_utc(2019, 2, 17, 2), -3 * 3600}}},
        // A two-hour jump each way.
        {"Two hours",
         3600,
         {{make_utc(2024, 5, 1, 0, 30), 3 * 3600}, {make_utc(2024, 9, 1), 3600}}},
    };
}

// The documented DST rules, minute by minute in UTC, as an independent oracle: whether
// expression e fires at instant u (a minute boundary; every offset here is whole minutes).
bool oracle_fires(const CronExpr& e, const DstCase& c, const mv::TimeZone& zone, TimePoint u) {
    int64_t before = c.initial;
    for (const auto& tr : c.transitions) {
        const int64_t jump = tr.offset_seconds - before;
        if (jump > 0 && u == tr.at && e.fixed_time()) {
            // The skipped wall-clock minutes fire at the end of the gap.
            const int64_t gap_start = tr.at / kSecond + before;
            for (int64_t n = gap_start; n < gap_start + jump; n += 60)
                if (e.matches(mv::local_from_naive(n))) return true;
        }
        if (jump < 0 && u >= tr.at && u < tr.at - jump * kSecond && e.fixed_time())
            return false;  // second pass of a repeated wall-clock time
        before = tr.offset_seconds;
    }
    return e.matches(zone.to_local(u));
}

// The first instant after t at which the oracle fires.
TimePoint oracle_next(const CronExpr& e, const DstCase& c, const mv::TimeZone& zone, TimePoint t) {
    TimePoint u = (t / kMinute + 1) * kMinute;
    while (!oracle_fires(e, c, zone, u)) u += kMinute;
    return u;
}

const char* const kDstExpressions[] = {
    "* * * * *",      "*/10 * * * *", "30 * * * *",   "@hourly",         "30 2 * * *",
    "0,30 2 * * *",   "30 1 * * *",   "15 1,2 * * *", "0 3 * * *",       "@daily",
    "*/20 1-3 * * *", "59 1 * * *",   "0 2 * * sun",  "0 */2 * * *",     "5 0-4 * * *",
    "30 23 * * *",    "0 0 * * *",    "15 0 * * *",   "*/15 23,0 * * *", "45 0-3/2 * * *"};

}  // namespace

TEST(CronDst, ConsecutiveTicksMatchTheDocumentedRules) {
    for (const DstCase& c : dst_cases()) {
        TransitionZone zone(c.initial, c.transitions);
        for (const char* expr : kDstExpressions) {
            CronExpr e = CronExpr::parse(expr);
            for (const auto& tr : c.transitions) {
                const TimePoint start = tr.at - 30 * kHour + kSecond;
                TimePoint t = start;
                int count = 0;
                while (t < tr.at + 30 * kHour) {
                    const TimePoint expected = oracle_next(e, c, zone, t);
                    t = e.next_after(t, zone);
                    ASSERT_EQ(mv::format_utc(t), mv::format_utc(expected))
                        << c.name << " " << expr << " tick " << count;
                    count++;
                }
                EXPECT_GT(count, 0) << expr;
            }
        }
    }
}

TEST(CronDst, NextAfterAnyInstantMatchesTheDocumentedRules) {
    // From instants every 13 minutes 7.5 seconds around each transition.
    for (const DstCase& c : dst_cases()) {
        TransitionZone zone(c.initial, c.transitions);
        for (const char* expr : kDstExpressions) {
            CronExpr e = CronExpr::parse(expr);
            for (const auto& tr : c.transitions) {
                for (TimePoint t = tr.at - 5 * kHour; t < tr.at + 5 * kHour;
                     t += 13 * kMinute + 7 * kSecond + 500000) {
                    ASSERT_EQ(mv::format_utc(e.next_after(t, zone)),
                              mv::format_utc(oracle_next(e, c, zone, t)))
                        << c.name << " " << expr << " after " << mv::format_utc(t);
                }
            }
        }
    }
}

TEST(CronDst, DailyAtASkippedMidnightRunsAtOneOClock) {
    TransitionZone zone(-3 * 3600, {{make_utc(2018, 11, 4, 3), -2 * 3600}});
    EXPECT_EQ(ticks("@daily", make_utc(2018, 11, 3, 12), 2, zone),
              (std::vector<std::string>{"2018-11-04 03:00:00Z",     // 01:00 -02
                                        "2018-11-05 02:00:00Z"}));  // 00:00 -02
}
