// Schedule parsing, next due times and retry backoff (see schedule.hpp).
#include "core/schedule.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/error.hpp"

namespace mv {

namespace {

[[noreturn]] void interval_error(std::string_view text, const std::string& detail) {
    // Throws the 22023 error for an interval.
    throw Error(sqlstate::invalid_parameter_value, "invalid interval \"" + std::string(text) + "\"")
        .detail(detail)
        .hint(
            "Write a length of time such as '30 seconds', '5 minutes', '2 hours 30 minutes', "
            "'1 day', '90s' or '00:05:00'.");
}

[[noreturn]] void schedule_error(std::string_view text, const std::string& detail) {
    // Throws the 22023 error for a schedule, with the hint showing both forms.
    throw Error(sqlstate::invalid_parameter_value, "invalid schedule \"" + std::string(text) + "\"")
        .detail(detail)
        .hint(kScheduleHint);
}

// Character classes are ASCII-only on purpose: <cctype> follows the backend's LC_CTYPE.
bool is_space(char c) {
    // ASCII white space.
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool is_digit(char c) {
    // 0-9.
    return c >= '0' && c <= '9';
}

bool is_alpha(char c) {
    // ASCII letters.
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_word(char c) {
    // A letter of a unit: ASCII letters, and any byte of a non-ASCII UTF-8 character (so that
    // a misspelt unit is reported whole).
    return is_alpha(c) || static_cast<unsigned char>(c) >= 0x80;
}

std::string_view trim(std::string_view s) {
    // s without leading and trailing white space.
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// A decimal number as read: integer part and up to 6 fraction digits (scaled to millionths).
struct Decimal {
    int64_t whole = 0;
    int64_t millionths = 0;
};

// Reads the interval grammar of parse_interval.
class IntervalParser {
  public:
    explicit IntervalParser(std::string_view text) : text_(text) {}

    Duration parse() {
        // number unit pairs, at most one hh:mm[:ss] group, or a lone number of seconds.
        skip_space();
        if (i_ >= text_.size()) fail("The interval is empty.");
        if (text_[i_] == '+') {
            i_++;
        } else if (text_[i_] == '-') {
            fail("The interval must be positive.");
        }
        Duration total = 0;
        int items = 0;
        bool lone_number = false;
        bool have_clock = false;
        for (;;) {
            skip_space();
            if (i_ >= text_.size()) break;
            if (text_[i_] == '-' || text_[i_] == '+')
                fail(
                    "Signs inside an interval are not supported; write a single positive "
                    "length.");
            if (!is_digit(text_[i_]) && text_[i_] != '.') {
                std::string word = read_word();
                if (word == "ago")
                    fail("The interval must be positive (\"ago\" is not supported).");
                fail("Expected a number where \"" + word + "\" is.");
            }
            Decimal n = read_number();
            items++;
            if (i_ < text_.size() && text_[i_] == ':') {
                if (have_clock) fail("Only one hh:mm:ss time may appear.");
                if (n.millionths != 0) fail("The hours of hh:mm:ss must be a whole number.");
                have_clock = true;
                total = add(total, read_clock(n.whole));
                continue;
            }
            skip_space();
            if (i_ >= text_.size() || !is_word(text_[i_])) {
                lone_number = true;  // seconds, allowed only on its own
                total = add(total, scale(n, kSecond));
                continue;
            }
            total = add(total, scale(n, unit(read_word())));
        }
        if (lone_number && items > 1) fail("A number needs a unit, e.g. '30 seconds'.");
        if (total <= 0) fail("The interval must be positive.");
        return total;
    }

  private:
    [[noreturn]] void fail(const std::string& why) const {
        // Throws the interval error with this detail.
        interval_error(text_, why);
    }

    void skip_space() {
        // Moves past white space.
        while (i_ < text_.size() && is_space(text_[i_])) i_++;
    }

    std::string read_word() {
        // Word characters, ASCII lower-cased; or else everything up to white space or a digit,
        // for the error message.
        std::string w;
        while (i_ < text_.size() && is_word(text_[i_])) {
            const char c = text_[i_++];
            w.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
        }
        if (w.empty())
            while (i_ < text_.size() && !is_space(text_[i_]) && !is_digit(text_[i_]))
                w.push_back(text_[i_++]);
        return w;
    }

    Decimal read_number() {
        // digits [. digits] or . digits; more than 6 fraction digits are cut.
        Decimal d;
        bool any = false;
        int digits = 0;
        while (i_ < text_.size() && is_digit(text_[i_])) {
            if (++digits > 15) fail("The number is too large.");
            d.whole = d.whole * 10 + (text_[i_++] - '0');
            any = true;
        }
        if (i_ < text_.size() && text_[i_] == '.') {
            i_++;
            int64_t place = 100000;
            while (i_ < text_.size() && is_digit(text_[i_])) {
                d.millionths += (text_[i_++] - '0') * place;
                place /= 10;
                any = true;
            }
        }
        if (!any) fail("\".\" is not a number.");
        return d;
    }

    Duration unit(const std::string& w) const {
        // The length of one unit, or an error.
        static const std::vector<std::pair<std::vector<const char*>, Duration>> kUnits = {
            {{"us", "usec", "usecs", "microsecond", "microseconds"}, kMicrosecond},
            {{"ms", "msec", "msecs", "millisecond", "milliseconds"}, kMillisecond},
            {{"s", "sec", "secs", "second", "seconds"}, kSecond},
            {{"m", "min", "mins", "minute", "minutes"}, kMinute},
            {{"h", "hr", "hrs", "hour", "hours"}, kHour},
            {{"d", "day", "days"}, kDay},
            {{"w", "week", "weeks"}, 7 * kDay},
        };
        for (const auto& [names, length] : kUnits)
            for (const char* name : names)
                if (w == name) return length;
        for (const char* variable :
             {"mon", "mons", "month", "months", "y", "yr", "yrs", "year", "years", "decade",
              "decades", "century", "centuries", "millennium", "millennia"})
            if (w == variable)
                fail(
                    "Months and years have no fixed length; for calendar schedules use a cron "
                    "expression such as '@monthly' or '0 0 1 * *'.");
        fail("\"" + w +
             "\" is not a unit; use microseconds, milliseconds, seconds, minutes, hours, days or "
             "weeks.");
    }

    Duration scale(const Decimal& n, Duration unit_length) const {
        // n units, refusing lengths beyond kMaxInterval.
        if (n.whole > kMaxInterval / unit_length) too_long();
        return n.whole * unit_length + n.millionths * unit_length / 1000000;
    }

    Duration add(Duration a, Duration b) const {
        // a + b, refusing lengths beyond kMaxInterval.
        if (a > kMaxInterval - b) too_long();
        return a + b;
    }

    [[noreturn]] void too_long() const {
        // Refuses a length beyond kMaxInterval.
        fail("An interval may be at most 100 years.");
    }

    Duration read_clock(int64_t hours) {
        // The rest of hh:mm[:ss[.f]] after the hours; the cursor is on the first ':'.
        i_++;
        Decimal minutes = read_two_digits("minutes");
        Decimal seconds;
        if (i_ < text_.size() && text_[i_] == ':') {
            i_++;
            seconds = read_number();
            if (seconds.whole > 59) fail("The seconds of hh:mm:ss must be below 60.");
        }
        if (minutes.whole > 59) fail("The minutes of hh:mm:ss must be below 60.");
        Duration d = scale(Decimal{hours, 0}, kHour);
        d = add(d, minutes.whole * kMinute);
        return add(d, scale(seconds, kSecond));
    }

    Decimal read_two_digits(const char* what) {
        // A whole number of minutes in hh:mm.
        if (i_ >= text_.size() || !is_digit(text_[i_]))
            fail(std::string("The ") + what + " of hh:mm:ss are missing.");
        Decimal d;
        int digits = 0;
        while (i_ < text_.size() && is_digit(text_[i_]) && digits < 3) {
            d.whole = d.whole * 10 + (text_[i_++] - '0');
            digits++;
        }
        return d;
    }

    std::string_view text_;
    size_t i_ = 0;
};

bool looks_like_cron(std::string_view text) {
    // Exactly 5 fields of cron characters, or any of * / , (never in an interval).
    if (text.find_first_of("*/,") != std::string_view::npos) return true;
    int fields = 0;
    bool in_field = false;
    for (char c : text) {
        if (is_space(c)) {
            in_field = false;
            continue;
        }
        if (!is_digit(c) && !is_alpha(c) && c != '*' && c != '/' && c != ',' && c != '-')
            return false;
        if (!in_field) fields++;
        in_field = true;
    }
    return fields == 5;
}

std::string plural(int64_t n, const char* unit) {
    // "1 hour", "2 hours".
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
}

}  // namespace

Duration parse_interval(std::string_view text) {
    // See IntervalParser.
    return IntervalParser(text).parse();
}

std::string format_duration(Duration d) {
    // Days, hours, minutes and seconds (with a fraction), largest first, zero parts left out.
    if (d < 0) return "-" + format_duration(-d);
    std::vector<std::string> parts;
    if (d >= kDay) parts.push_back(plural(d / kDay, "day"));
    if (d % kDay >= kHour) parts.push_back(plural(d % kDay / kHour, "hour"));
    if (d % kHour >= kMinute) parts.push_back(plural(d % kHour / kMinute, "minute"));
    const int64_t secs = d % kMinute / kSecond;
    const int64_t frac = d % kSecond;
    if (frac != 0) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(frac));
        std::string f = buf;
        while (f.back() == '0') f.pop_back();
        parts.push_back(std::to_string(secs) + "." + f + " seconds");
    } else if (secs != 0 || parts.empty()) {
        parts.push_back(plural(secs, "second"));
    }
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : " ") + p;
    return out;
}

Schedule Schedule::every(Duration interval) {
    // Checks the bounds.
    if (interval < kMinInterval)
        throw Error(sqlstate::invalid_parameter_value,
                    "invalid schedule \"" + format_duration(interval) + "\"")
            .detail("An interval schedule must be at least 1 second.")
            .hint(kScheduleHint);
    if (interval > kMaxInterval)
        throw Error(sqlstate::invalid_parameter_value,
                    "invalid schedule \"" + format_duration(interval) + "\"")
            .detail("An interval may be at most 100 years.")
            .hint(kScheduleHint);
    return Schedule(interval);
}

Schedule Schedule::cron(CronExpr expr) {
    // Wraps the expression.
    return Schedule(std::move(expr));
}

std::string Schedule::to_string() const {
    // The interval's or the expression's canonical text.
    return is_interval() ? format_duration(interval()) : cron_expr().to_string();
}

Schedule parse_schedule(std::string_view text) {
    // Cron when it starts with @ or has 5 cron fields, otherwise an interval.
    const std::string_view t = trim(text);
    if (t.empty()) schedule_error(text, "The schedule is empty.");
    if (t.front() == '@' || looks_like_cron(t)) {
        try {
            return Schedule::cron(CronExpr::parse(t));
        } catch (const Error& cron_failure) {
            if (t.front() != '@') {
                try {
                    Duration d = parse_interval(t);
                    if (d >= kMinInterval) return Schedule::every(d);
                } catch (const Error&) {
                    // Not an interval either: report the cron problem.
                }
            }
            schedule_error(text, cron_failure.info().detail);
        }
    }
    Duration d = 0;
    try {
        d = parse_interval(t);
    } catch (const Error& e) {
        schedule_error(text, e.info().detail);
    }
    if (d < kMinInterval)
        schedule_error(text, "An interval schedule must be at least 1 second; " +
                                 format_duration(d) + " is shorter.");
    return Schedule::every(d);
}

TimePoint next_due(const Schedule& schedule, const RunHistory& history, TimePoint now,
                   const TimeZone& tz) {
    // Interval: after the finish. Cron: the first tick after the last start.
    if (schedule.is_interval())
        return history.last_finished ? *history.last_finished + schedule.interval() : now;
    const TimePoint reference = history.last_started    ? *history.last_started
                                : history.last_finished ? *history.last_finished
                                                        : now;
    return schedule.cron_expr().next_after(reference, tz);
}

Random seeded_random(uint64_t seed) {
    // SplitMix64, top 53 bits as a double in [0, 1).
    return [state = seed]() mutable {
        uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
    };
}

Duration backoff_ceiling(int failures, Duration base_delay, Duration max_delay) {
    // Doubles from the base until the cap, without overflow.
    if (failures <= 0) return 0;
    const Duration base = std::max(base_delay, kMinRetryDelay);
    const Duration cap = std::max(max_delay, base);
    Duration d = base;
    for (int i = 1; i < failures; i++) {
        if (d >= cap / 2) return cap;
        d *= 2;
    }
    return std::min(d, cap);
}

Duration retry_delay(int failures, Duration base_delay, Duration max_delay, const Random& random) {
    // Equal jitter: the upper half of the ceiling is random.
    const Duration c = backoff_ceiling(failures, base_delay, max_delay);
    if (c == 0) return 0;
    const Duration half = c / 2;
    double r = random ? random() : 0.0;
    r = std::clamp(r, 0.0, 1.0);
    return std::min(c, half + static_cast<Duration>(r * static_cast<double>(c - half)));
}

Duration retry_delay(int failures, const RetryPolicy& policy, const Random& random) {
    // The policy's delays.
    return retry_delay(failures, policy.base_delay, policy.max_delay, random);
}

}  // namespace mv
