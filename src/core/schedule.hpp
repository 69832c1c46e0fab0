// Schedules of managed views: parsing the two forms users write (an interval such as
// '5 minutes', or a cron expression such as '*/10 * * * *'), when a view is next due, and the
// retry backoff of a failing view. Pure C++, unit-tested.
//
// - An interval schedule re-queues on completion: the next run is due `interval` after the
//   previous run finished, so a run that takes longer than the interval never overlaps the next.
// - A cron schedule is wall-clock (in matviews.timezone): the next run is due at the first tick
//   after the previous run started. Ticks missed while the worker was down or while the
//   previous run was still running collapse into one due run.
// - Retries use exponential backoff with "equal jitter": after n consecutive failures the delay
//   is drawn uniformly from [c/2, c], where c = min(max_delay, base_delay * 2^(n-1)). The lower
//   half keeps a failing view from ever running more often than once per c/2 (no hot loop), the
//   random upper half spreads out views that failed together. Below the cap the ranges of
//   successive failures ([c/2, c], then [c, 2c]) do not overlap, so every delay is at least
//   the previous one; once c reaches the cap, delays stay within [max_delay/2, max_delay].
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "core/cron.hpp"

namespace mv {

// The hint of every invalid-schedule error (SQLSTATE 22023).
inline constexpr const char* kScheduleHint =
    "Use an interval such as '5 minutes' (runs that long after the previous run finished) or a "
    "cron expression such as '*/10 * * * *' or '@hourly' (wall-clock times in "
    "matviews.timezone).";

// The shortest interval schedule.
inline constexpr Duration kMinInterval = kSecond;
// The longest interval accepted (100 years), which keeps all arithmetic far from overflow.
inline constexpr Duration kMaxInterval = 36525 * kDay;

// Parses a positive length of time written as for PostgreSQL's interval type, in the forms that
// have a fixed length: '30 seconds', '5 minutes', '1 hour', '2 hours 30 minutes', '1 day',
// '1 week', '90s', '10min', '1h30m', '1.5 hours', '500 ms', '00:05:00', '00:05' (hh:mm),
// '1 day 02:00:00', or a bare number of seconds ('300'). Units: us/usec/microsecond(s),
// ms/msec/millisecond(s), s/sec/second(s), m/min/minute(s), h/hr/hour(s), d/day(s),
// w/week(s), in any case. Months and years are refused (they have no fixed length). Throws
// Error 22023 "invalid interval" with a detail for anything else, for zero or negative lengths,
// and for more than 100 years. Sub-second lengths are accepted here (a schedule needs >= 1 s).
Duration parse_interval(std::string_view text);

// The canonical text of a length of time, readable by parse_interval and by PostgreSQL:
// "1 day 2 hours 30 minutes", "90 seconds" reads "1 minute 30 seconds", "1.5 seconds".
std::string format_duration(Duration d);

// A view's schedule: an interval or a cron expression.
class Schedule {
  public:
    // An interval schedule; throws Error 22023 below 1 second or above 100 years.
    static Schedule every(Duration interval);
    // A cron schedule.
    static Schedule cron(CronExpr expr);

    bool is_interval() const { return std::holds_alternative<Duration>(v_); }
    bool is_cron() const { return std::holds_alternative<CronExpr>(v_); }
    // The interval (precondition: is_interval()).
    Duration interval() const { return std::get<Duration>(v_); }
    // The cron expression (precondition: is_cron()).
    const CronExpr& cron_expr() const { return std::get<CronExpr>(v_); }

    // The canonical text: format_duration of the interval, or the cron expression's text.
    std::string to_string() const;

    // Same interval, or cron expressions with the same ticks.
    bool operator==(const Schedule& o) const { return v_ == o.v_; }
    bool operator!=(const Schedule& o) const { return !(*this == o); }

  private:
    explicit Schedule(std::variant<Duration, CronExpr> v) : v_(std::move(v)) {}
    std::variant<Duration, CronExpr> v_;
};

// Parses a schedule as users write it for matviews.schedule. Text starting with `@`, holding any
// of `*`, `/` or `,`, or made of exactly 5 fields of cron characters (digits, letters, * / , -),
// is a cron expression (should
// it fail as cron but read as an interval, such as '1 hour 30 min 5s', it is that interval);
// anything else is an interval of at least 1 second. Throws
// Error("22023", "invalid schedule \"<text>\"") whose detail says what is wrong and whose hint is
// kScheduleHint.
Schedule parse_schedule(std::string_view text);

// What is known of a view's previous scheduled run.
struct RunHistory {
    std::optional<TimePoint> last_started;   // when it started
    std::optional<TimePoint> last_finished;  // when it finished (success or failure)
};

// When a view's next regular run is due (no retries, no backoff):
// - interval: last_finished + interval; `now` when it never finished;
// - cron: the first tick in tz after last_started (else after last_finished, else after now;
//   without history, call once and keep the result). The tick may lie in the past: missed
//   ticks collapse into that one due run, and once it has started (last_started = its start)
//   the next is the first tick after that start.
TimePoint next_due(const Schedule& schedule, const RunHistory& history, TimePoint now,
                   const TimeZone& tz);

// A source of random numbers uniform in [0, 1).
using Random = std::function<double()>;
// A deterministic Random (SplitMix64): the same seed gives the same sequence on every platform.
Random seeded_random(uint64_t seed);

// How a view retries after a failed run (per-view options max_retries and retry_delay).
struct RetryPolicy {
    int max_retries = 3;                 // retries of one failed regular run
    Duration base_delay = 30 * kSecond;  // the backoff after the first failure (at least 1 s)
    Duration max_delay = kHour;          // the cap of the backoff
};

// The shortest backoff: base delays below it are raised to it.
inline constexpr Duration kMinRetryDelay = kSecond;

// The backoff ceiling after `failures` consecutive failures:
// min(max_delay, base_delay * 2^(failures-1)), with base_delay raised to kMinRetryDelay and
// max_delay to base_delay; 0 when failures <= 0.
Duration backoff_ceiling(int failures, Duration base_delay, Duration max_delay);

// The delay before the next attempt after `failures` consecutive failures, with equal jitter:
// c/2 + random() * c/2 with c = backoff_ceiling(...), so within [c/2, c]. 0 when failures <= 0.
Duration retry_delay(int failures, Duration base_delay, Duration max_delay, const Random& random);
// The same with the delays of a policy.
Duration retry_delay(int failures, const RetryPolicy& policy, const Random& random);

}  // namespace mv
