// Time and cron for the scheduler: the time representation (microseconds since the Unix epoch,
// UTC), calendar arithmetic, the time-zone interface the caller implements (no process-wide TZ
// state is touched), and the 5-field cron expression with its next tick. Pure C++, unit-tested.
//
// Daylight-saving time (and any other change of a zone's UTC offset) follows cron(8) (Vixie
// cron, cronie):
// - A "fixed-time" expression is one whose minute and hour fields both do not start with `*`
//   (`30 2 * * *`, `0 9 * * mon-fri`, `@daily`). A "wildcard" expression has `*` at the start of
//   its minute or hour field (`*/10 * * * *`, `0 * * * *`, `@hourly`).
// - Local times skipped by a forward jump (02:00-02:59 on a spring-forward day in Europe or the
//   USA): a fixed-time expression that falls in the gap fires once, at the first instant after
//   the gap (`30 2 * * *` runs at 03:00 that day; `0,30 2 * * *` also runs once, at 03:00). A
//   wildcard expression just has no ticks in the gap and carries on by the new local time
//   (`30 * * * *` runs at 01:30 and then 03:30).
// - Local times repeated by a backward jump (01:00-01:59 twice on a fall-back day): a
//   fixed-time expression fires only at the first occurrence, so a repeated hour runs it once
//   (`30 1 * * *` runs once that day). A wildcard expression follows elapsed time and fires in
//   both passes (`*/30 * * * *` keeps running every 30 minutes; `@hourly` runs at 01:00 in
//   summer time and again at 01:00 in standard time, one hour later).
// Zones are assumed to change their offset at most once in any 48 hours, by less than 26 hours:
// true of every zone in use today.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mv {

// An instant: microseconds since 1970-01-01 00:00:00 UTC. PostgreSQL's TimestampTz counts from
// 2000-01-01 instead; the two differ by a constant.
using TimePoint = int64_t;
// A length of time in microseconds.
using Duration = int64_t;

inline constexpr Duration kMicrosecond = 1;
inline constexpr Duration kMillisecond = 1000;
inline constexpr Duration kSecond = 1000 * kMillisecond;
inline constexpr Duration kMinute = 60 * kSecond;
inline constexpr Duration kHour = 60 * kMinute;
inline constexpr Duration kDay = 24 * kHour;

// A wall-clock time in some zone, broken down like struct tm but with natural numbering.
struct LocalTime {
    int year = 1970;
    int month = 1;    // 1-12
    int day = 1;      // 1-31
    int hour = 0;     // 0-23
    int minute = 0;   // 0-59
    int second = 0;   // 0-59
    int weekday = 4;  // 0 = Sunday ... 6 = Saturday; ignored on input to TimeZone::to_utc

    bool operator==(const LocalTime& o) const {
        return year == o.year && month == o.month && day == o.day && hour == o.hour &&
               minute == o.minute && second == o.second;
    }
    bool operator!=(const LocalTime& o) const { return !(*this == o); }
};

// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12).
int64_t days_from_civil(int year, int month, int day);
// Number of days in a month (1-12) of a year.
int days_in_month(int year, int month);
// A wall-clock time as "naive" seconds: the seconds since 1970-01-01 00:00 of the same calendar,
// as if the zone were UTC. Naive values order wall-clock times and make calendar steps trivial.
int64_t naive_seconds(const LocalTime& t);
// The wall-clock time of naive seconds, weekday filled in.
LocalTime local_from_naive(int64_t naive);
// The instant of a UTC date and time.
TimePoint make_utc(int year, int month, int day, int hour = 0, int minute = 0, int second = 0);
// "YYYY-MM-DD HH:MM:SS" of a wall-clock time, for messages and test output.
std::string format_local(const LocalTime& t);
// "YYYY-MM-DD HH:MM:SS.ffffffZ" (fraction only when not zero) of an instant in UTC.
std::string format_utc(TimePoint t);

// Where a local wall-clock time falls on the UTC time line.
struct LocalResolution {
    enum class Kind {
        kUnique,    // it occurs once: first == second == that instant
        kRepeated,  // the clocks went back and it occurs twice: first < second
        kSkipped,   // the clocks jumped over it: first == second == the instant the gap ends
    };
    Kind kind = Kind::kUnique;
    TimePoint first = 0;
    TimePoint second = 0;
};

// A time zone, supplied by the caller. matviews runs inside a server backend, so it must not
// change process-wide state (setenv("TZ"), tzset, localtime_r): the PostgreSQL side implements
// to_local with its own time-zone code (pg_localtime on a pg_tz), and can rely on the default
// to_utc, which is derived from to_local alone. Implementations must be deterministic.
class TimeZone {
  public:
    virtual ~TimeZone() = default;
    // The wall-clock time at an instant (seconds truncated toward the past).
    virtual LocalTime to_local(TimePoint utc) const = 0;
    // Where a wall-clock time (weekday ignored) falls in UTC. The default finds the offsets in
    // effect 18 hours either side through to_local, tries both, and for a skipped time searches
    // the gap's end to the second: at most about 40 calls of to_local, 4 in the common case.
    virtual LocalResolution to_utc(const LocalTime& local) const;
    // The zone's offset east of UTC at an instant, in seconds (derived from to_local).
    int64_t offset_seconds(TimePoint utc) const;
};

// UTC.
class UtcZone final : public TimeZone {
  public:
    // UTC broken down.
    LocalTime to_local(TimePoint utc) const override;
    // The one instant of a UTC time.
    LocalResolution to_utc(const LocalTime& local) const override;
};

// A zone at a constant offset from UTC, e.g. +02:00 (7200 seconds east).
class FixedOffsetZone final : public TimeZone {
  public:
    explicit FixedOffsetZone(int64_t offset_seconds) : offset_(offset_seconds) {}
    // UTC plus the offset, broken down.
    LocalTime to_local(TimePoint utc) const override;
    // The one instant of a wall-clock time.
    LocalResolution to_utc(const LocalTime& local) const override;

  private:
    int64_t offset_;
};

// A zone given by a table of offset changes, e.g. a daylight-saving zone for tests. It uses the
// default (probing) to_utc, which is what a zone implemented with pg_localtime also gets.
class TransitionZone final : public TimeZone {
  public:
    // One change: from instant `at` on, the offset is `offset_seconds` east of UTC.
    struct Transition {
        TimePoint at;
        int64_t offset_seconds;
    };
    // Throws Error 22023 when the transitions are not in increasing order.
    TransitionZone(int64_t initial_offset_seconds, std::vector<Transition> transitions);
    // UTC plus the offset in effect at utc, broken down.
    LocalTime to_local(TimePoint utc) const override;

  private:
    int64_t initial_;
    std::vector<Transition> transitions_;
};

// The shared UTC zone.
const TimeZone& utc_zone();

// A parsed 5-field cron expression: minute hour day-of-month month day-of-week.
class CronExpr {
  public:
    // Parses a cron expression: 5 fields
    // separated by white space, each `*`, `n`, `a-b`, `*/n`, `a-b/n`, `a/n` (a to the field's
    // maximum, step n) or a comma-separated list of these; month names jan-dec and day names
    // sun-sat in any case; day of week 0-7 with 0 and 7 for Sunday; or one of @yearly,
    // @annually, @monthly, @weekly, @daily, @midnight, @hourly. Throws Error 22023 naming the
    // wrong field and why, also for an expression that can never fire (e.g. `0 0 30 2 *`).
    static CronExpr parse(std::string_view text);

    // Whether a wall-clock time matches, to the minute (seconds ignored). Day of month and day
    // of week combine as in cron(8): when both fields are restricted (neither starts with `*`),
    // a day matches when either matches; otherwise a day must match both (a field that is `*`
    // matches every day, so then only the other one restricts).
    bool matches(const LocalTime& t) const;

    // The earliest tick strictly after t: a local minute boundary that matches, turned into UTC
    // in zone tz, with the daylight-saving rules in this file's header comment.
    TimePoint next_after(TimePoint t, const TimeZone& tz) const;

    // The first matching wall-clock minute at or after naive seconds `from` (rounded up to a
    // minute), in naive seconds; the calendar search behind next_after.
    int64_t next_local_match(int64_t from) const;

    // Whether neither the minute nor the hour field starts with `*` (see the header comment).
    bool fixed_time() const { return !minute_star_ && !hour_star_; }

    // The canonical text: the fields in lower case separated by single spaces, or the macro
    // (@annually reads @yearly, @midnight reads @daily).
    const std::string& to_string() const { return text_; }

    // Same ticks (compares the parsed sets, not the text).
    bool operator==(const CronExpr& o) const;
    bool operator!=(const CronExpr& o) const { return !(*this == o); }

  private:
    CronExpr() = default;
    bool day_matches(int day, int weekday) const;

    std::bitset<60> minutes_;
    std::bitset<24> hours_;
    std::bitset<32> days_;     // 1-31
    std::bitset<13> months_;   // 1-12
    std::bitset<7> weekdays_;  // 0-6, Sunday = 0
    bool minute_star_ = false;
    bool hour_star_ = false;
    bool dom_star_ = false;
    bool dow_star_ = false;
    std::string text_;
};

}  // namespace mv
