// Calendar arithmetic, time zones and cron expressions (see cron.hpp).
#include "core/cron.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "core/error.hpp"

namespace mv {

namespace {

constexpr int64_t kSecondsPerDay = 86400;
// How far either side of a wall-clock time the default to_utc looks for the offsets in effect:
// more than any UTC offset (at most 14 hours today).
constexpr int64_t kProbeSeconds = 18 * 3600;
// How far after t next_after looks for a backward jump of the clocks.
constexpr int64_t kFoldAheadSeconds = 26 * 3600;
// next_local_match gives up after this many days (no valid expression gets near it: the
// rarest, 29 February on a given weekday, recurs within about 40 years).
constexpr int64_t kSearchDays = 100 * 366;
// next_after gives up after this many candidates that do not fire (a whole skipped day of
// every-minute ticks is 1440).
constexpr int kMaxIdleCandidates = 100000;

constexpr const char* kCronHint =
    "A cron expression has 5 fields: minute (0-59) hour (0-23) day-of-month (1-31) month (1-12 "
    "or jan-dec) day-of-week (0-7 or sun-sat; 0 and 7 are Sunday). Each field is *, a number, a "
    "range a-b, a step */n, a-b/n or a/n, or a list of these separated by commas. Or use "
    "@yearly, @monthly, @weekly, @daily or @hourly. Example: '*/10 * * * *'.";

int64_t floor_div(int64_t a, int64_t b) {
    // Division rounding toward negative infinity.
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

struct Civil {
    int year;
    int month;
    int day;
};

Civil civil_from_days(int64_t z) {
    // The proleptic Gregorian date of days since 1970-01-01 (H. Hinnant's algorithm).
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    const int year = static_cast<int>(yoe + era * 400 + (month <= 2 ? 1 : 0));
    return {year, month, day};
}

int weekday_of_days(int64_t days) {
    // Day of week (Sunday = 0) of days since 1970-01-01, a Thursday.
    int64_t w = (days + 4) % 7;
    return static_cast<int>(w < 0 ? w + 7 : w);
}

bool is_leap(int year) {
    // Gregorian leap year rule.
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

// What a cron field accepts.
struct FieldSpec {
    const char* name;
    int min;
    int max;
    const char* const* names;  // names[i] is value min_name + i; nullptr when none
    int names_count;
    int min_name;
    const char* names_help;
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr FieldSpec kMinuteField{"minute", 0, 59, nullptr, 0, 0, nullptr};
constexpr FieldSpec kHourField{"hour", 0, 23, nullptr, 0, 0, nullptr};
constexpr FieldSpec kDomField{"day-of-month", 1, 31, nullptr, 0, 0, nullptr};
constexpr FieldSpec kMonthField{"month", 1, 12, kMonthNames, 12, 1, "a month name (jan-dec)"};
constexpr FieldSpec kDowField{"day-of-week", 0, 7, kDayNames, 7, 0, "a day name (sun-sat)"};

// Character classes are ASCII-only on purpose: <cctype> follows the backend's LC_CTYPE.
bool is_digit(char c) {
    // 0-9.
    return c >= '0' && c <= '9';
}

bool is_space(char c) {
    // ASCII white space.
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string lower(std::string_view s) {
    // ASCII lower case; other bytes unchanged.
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

[[noreturn]] void cron_error(std::string_view text, const std::string& detail) {
    // Throws the 22023 error for a cron expression.
    throw Error(sqlstate::invalid_parameter_value,
                "invalid cron expression \"" + std::string(text) + "\"")
        .detail(detail)
        .hint(kCronHint);
}

// Parses one field into a bit mask of the values it allows (bit i = value i).
class FieldParser {
  public:
    FieldParser(std::string_view expr, std::string_view field, const FieldSpec& spec)
        : expr_(expr), field_(field), spec_(spec) {}

    uint64_t parse() {
        // Parses the comma-separated items of the field.
        uint64_t mask = 0;
        size_t start = 0;
        for (;;) {
            size_t comma = field_.find(',', start);
            std::string_view item = field_.substr(
                start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
            if (item.empty()) fail("an item of the list is empty.");
            mask |= parse_item(item);
            if (comma == std::string_view::npos) break;
            start = comma + 1;
        }
        return mask;
    }

  private:
    [[noreturn]] void fail(const std::string& why) const {
        // Throws the error naming this field.
        cron_error(expr_,
                   std::string(spec_.name) + " field \"" + std::string(field_) + "\": " + why);
    }

    int parse_value(std::string_view v) const {
        // A number or, where the field has them, a name; checked against the field's range.
        if (v.empty()) fail("a number is missing.");
        if (is_digit(v[0])) {
            if (v.size() > 6) fail(std::string(v) + " is out of range " + range_text() + ".");
            int n = 0;
            for (char c : v) {
                if (!is_digit(c)) fail("\"" + std::string(v) + "\" is not a number.");
                n = n * 10 + (c - '0');
            }
            if (n < spec_.min || n > spec_.max)
                fail(std::to_string(n) + " is out of range " + range_text() + ".");
            return n;
        }
        std::string name = lower(v);
        for (int i = 0; i < spec_.names_count; i++)
            if (name == spec_.names[i]) return spec_.min_name + i;
        if (spec_.names != nullptr)
            fail("\"" + std::string(v) + "\" is neither a number nor " + spec_.names_help + ".");
        fail("\"" + std::string(v) + "\" is not a number.");
    }

    std::string range_text() const {
        // "0-59", or for day of week "0-7".
        return std::to_string(spec_.min) + "-" + std::to_string(spec_.max);
    }

    uint64_t parse_item(std::string_view item) const {
        // One of *, a, a-b, */n, a-b/n, a/n.
        std::string_view base = item;
        std::optional<int> step;
        size_t slash = item.find('/');
        if (slash != std::string_view::npos) {
            base = item.substr(0, slash);
            std::string_view s = item.substr(slash + 1);
            if (s.empty()) fail("the step after \"/\" is missing.");
            int n = 0;
            for (char c : s) {
                if (!is_digit(c) || n > 100000)
                    fail("the step \"" + std::string(s) + "\" is not a positive number.");
                n = n * 10 + (c - '0');
            }
            const int span = spec_.max - spec_.min + 1;
            if (n < 1 || n > span)
                fail("the step " + std::to_string(n) + " is not between 1 and " +
                     std::to_string(span) + ".");
            step = n;
        }
        int lo = 0;
        int hi = 0;
        if (base == "*") {
            lo = spec_.min;
            hi = spec_.max;
        } else {
            size_t dash = base.find('-');
            if (dash == std::string_view::npos) {
                lo = parse_value(base);
                hi = step ? spec_.max : lo;  // a/n runs from a to the maximum
            } else {
                lo = parse_value(base.substr(0, dash));
                hi = parse_value(base.substr(dash + 1));
                if (lo > hi)
                    fail("the range " + std::to_string(lo) + "-" + std::to_string(hi) +
                         " goes backwards; list both parts instead, e.g. " + std::to_string(lo) +
                         "-" + std::to_string(spec_.max) + "," + std::to_string(spec_.min) + "-" +
                         std::to_string(hi) + ".");
            }
        }
        uint64_t mask = 0;
        for (int v = lo; v <= hi; v += step.value_or(1)) mask |= uint64_t{1} << v;
        return mask;
    }

    std::string_view expr_;
    std::string_view field_;
    const FieldSpec& spec_;
};

template <size_t N>
std::bitset<N> to_bits(uint64_t mask) {
    // The low N bits of a mask.
    return std::bitset<N>(mask);
}

std::vector<std::string_view> split_fields(std::string_view text) {
    // The white-space separated fields of text.
    std::vector<std::string_view> fields;
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_space(text[i])) i++;
        size_t start = i;
        while (i < text.size() && !is_space(text[i])) i++;
        if (i > start) fields.push_back(text.substr(start, i - start));
    }
    return fields;
}

}  // namespace

int64_t days_from_civil(int year, int month, int day) {
    // H. Hinnant's algorithm.
    const int64_t y = static_cast<int64_t>(year) - (month <= 2 ? 1 : 0);
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int days_in_month(int year, int month) {
    // 28-31 days, February by the leap year rule.
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && is_leap(year)) return 29;
    return kDays[month - 1];
}

int64_t naive_seconds(const LocalTime& t) {
    // Days times 86400 plus the time of day.
    return days_from_civil(t.year, t.month, t.day) * kSecondsPerDay + t.hour * 3600 +
           t.minute * 60 + t.second;
}

LocalTime local_from_naive(int64_t naive) {
    // Splits into date and time of day.
    const int64_t days = floor_div(naive, kSecondsPerDay);
    const int64_t sod = naive - days * kSecondsPerDay;
    Civil c = civil_from_days(days);
    LocalTime t;
    t.year = c.year;
    t.month = c.month;
    t.day = c.day;
    t.hour = static_cast<int>(sod / 3600);
    t.minute = static_cast<int>(sod % 3600 / 60);
    t.second = static_cast<int>(sod % 60);
    t.weekday = weekday_of_days(days);
    return t;
}

TimePoint make_utc(int year, int month, int day, int hour, int minute, int second) {
    // Naive seconds of the UTC time, in microseconds.
    LocalTime t;
    t.year = year;
    t.month = month;
    t.day = day;
    t.hour = hour;
    t.minute = minute;
    t.second = second;
    return naive_seconds(t) * kSecond;
}

std::string format_local(const LocalTime& t) {
    // ISO 8601 with a space.
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", t.year, t.month, t.day, t.hour,
                  t.minute, t.second);
    return buf;
}

std::string format_utc(TimePoint t) {
    // The UTC wall-clock time, with microseconds when not zero, and Z.
    const int64_t secs = floor_div(t, kSecond);
    const int64_t frac = t - secs * kSecond;
    std::string out = format_local(local_from_naive(secs));
    if (frac != 0) {
        char buf[16];
        std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac));
        out += buf;
    }
    return out + "Z";
}

int64_t TimeZone::offset_seconds(TimePoint utc) const {
    // Local naive seconds minus UTC seconds.
    return naive_seconds(to_local(utc)) - floor_div(utc, kSecond);
}

LocalResolution TimeZone::to_utc(const LocalTime& local) const {
    // Tries the offsets in effect before and after; a miss is a gap, searched to its end.
    const int64_t c = naive_seconds(local);
    const int64_t before = offset_seconds((c - kProbeSeconds) * kSecond);
    const int64_t after = offset_seconds((c + kProbeSeconds) * kSecond);
    auto occurs_at = [&](int64_t u) { return naive_seconds(to_local(u * kSecond)) == c; };
    std::vector<int64_t> found;
    for (int64_t off : {before, after}) {
        const int64_t u = c - off;
        if (std::find(found.begin(), found.end(), u) == found.end() && occurs_at(u))
            found.push_back(u);
    }
    std::sort(found.begin(), found.end());
    LocalResolution r;
    if (found.size() == 2) {
        r.kind = LocalResolution::Kind::kRepeated;
        r.first = found[0] * kSecond;
        r.second = found[1] * kSecond;
        return r;
    }
    if (found.size() == 1) {
        r.kind = LocalResolution::Kind::kUnique;
        r.first = r.second = found[0] * kSecond;
        return r;
    }
    if (after > before) {
        // The clocks jumped forward over local: the gap ends at the first instant whose wall
        // clock is past it. Invariant: wall(lo) < c < wall(hi).
        int64_t lo = c - after;
        int64_t hi = c - before;
        while (hi - lo > 1) {
            const int64_t mid = lo + (hi - lo) / 2;
            if (naive_seconds(to_local(mid * kSecond)) > c)
                hi = mid;
            else
                lo = mid;
        }
        r.kind = LocalResolution::Kind::kSkipped;
        r.first = r.second = hi * kSecond;
        return r;
    }
    // A zone that breaks the assumptions (several changes within 36 hours): the best guess.
    r.kind = LocalResolution::Kind::kUnique;
    r.first = r.second = (c - before) * kSecond;
    return r;
}

LocalTime UtcZone::to_local(TimePoint utc) const {
    // UTC seconds are the naive seconds.
    return local_from_naive(floor_div(utc, kSecond));
}

LocalResolution UtcZone::to_utc(const LocalTime& local) const {
    // Every UTC time occurs once.
    LocalResolution r;
    r.first = r.second = naive_seconds(local) * kSecond;
    return r;
}

LocalTime FixedOffsetZone::to_local(TimePoint utc) const {
    // UTC seconds plus the offset.
    return local_from_naive(floor_div(utc, kSecond) + offset_);
}

LocalResolution FixedOffsetZone::to_utc(const LocalTime& local) const {
    // Naive seconds minus the offset.
    LocalResolution r;
    r.first = r.second = (naive_seconds(local) - offset_) * kSecond;
    return r;
}

TransitionZone::TransitionZone(int64_t initial_offset_seconds, std::vector<Transition> transitions)
    : initial_(initial_offset_seconds), transitions_(std::move(transitions)) {
    // Keeps the table after checking its order.
    for (size_t i = 1; i < transitions_.size(); i++)
        if (transitions_[i].at <= transitions_[i - 1].at)
            throw Error(sqlstate::invalid_parameter_value,
                        "time zone transitions must be in increasing order")
                .hint("List each offset change once, earliest first.");
}

LocalTime TransitionZone::to_local(TimePoint utc) const {
    // The offset of the last transition at or before utc.
    auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc,
                               [](TimePoint u, const Transition& t) { return u < t.at; });
    const int64_t offset = it == transitions_.begin() ? initial_ : std::prev(it)->offset_seconds;
    return local_from_naive(floor_div(utc, kSecond) + offset);
}

const TimeZone& utc_zone() {
    // A function-local static: no initialization order issues.
    static const UtcZone zone;
    return zone;
}

CronExpr CronExpr::parse(std::string_view text) {
    // Macros first, then exactly 5 fields.
    std::vector<std::string_view> fields = split_fields(text);
    if (fields.empty()) cron_error(text, "The expression is empty.");
    CronExpr e;
    if (fields[0][0] == '@') {
        const std::string macro = lower(fields[0]);
        std::string expansion;
        if (macro == "@yearly" || macro == "@annually") {
            expansion = "0 0 1 1 *";
            e.text_ = "@yearly";
        } else if (macro == "@monthly") {
            expansion = "0 0 1 * *";
            e.text_ = "@monthly";
        } else if (macro == "@weekly") {
            expansion = "0 0 * * 0";
            e.text_ = "@weekly";
        } else if (macro == "@daily" || macro == "@midnight") {
            expansion = "0 0 * * *";
            e.text_ = "@daily";
        } else if (macro == "@hourly") {
            expansion = "0 * * * *";
            e.text_ = "@hourly";
        } else if (macro == "@reboot") {
            cron_error(text,
                       "@reboot is not supported: runs follow the wall clock, not server starts.");
        } else {
            cron_error(text, "\"" + std::string(fields[0]) +
                                 "\" is not a known macro (@yearly, @annually, @monthly, @weekly, "
                                 "@daily, @midnight, @hourly).");
        }
        if (fields.size() != 1)
            cron_error(text, "A macro such as @daily stands alone, without other fields.");
        std::string canonical = e.text_;
        e = parse(expansion);
        e.text_ = canonical;
        return e;
    }
    if (fields.size() != 5)
        cron_error(text,
                   "A cron expression has 5 fields (minute hour day-of-month month "
                   "day-of-week); this one has " +
                       std::to_string(fields.size()) +
                       ". Seconds and years fields are not supported.");
    e.minutes_ = to_bits<60>(FieldParser(text, fields[0], kMinuteField).parse());
    e.hours_ = to_bits<24>(FieldParser(text, fields[1], kHourField).parse());
    e.days_ = to_bits<32>(FieldParser(text, fields[2], kDomField).parse());
    e.months_ = to_bits<13>(FieldParser(text, fields[3], kMonthField).parse());
    uint64_t dow = FieldParser(text, fields[4], kDowField).parse();
    if (dow & (uint64_t{1} << 7)) dow = (dow & ~(uint64_t{1} << 7)) | 1;  // 7 is Sunday
    e.weekdays_ = to_bits<7>(dow);
    e.minute_star_ = fields[0][0] == '*';
    e.hour_star_ = fields[1][0] == '*';
    e.dom_star_ = fields[2][0] == '*';
    e.dow_star_ = fields[4][0] == '*';
    if (e.dom_star_ || e.dow_star_) {
        // Days must match both fields: some month must have one of the days of the month.
        bool possible = false;
        for (int m = 1; m <= 12 && !possible; m++) {
            if (!e.months_[m]) continue;
            const int max_day = m == 2 ? 29 : days_in_month(2001, m);
            for (int d = 1; d <= max_day && !possible; d++) possible = e.days_[d];
        }
        if (!possible)
            cron_error(text, "The expression never fires: no month in the month field \"" +
                                 std::string(fields[3]) +
                                 "\" has a day in the day-of-month field \"" +
                                 std::string(fields[2]) + "\".");
    }
    for (size_t i = 0; i < fields.size(); i++) {
        if (i > 0) e.text_ += ' ';
        e.text_ += lower(fields[i]);
    }
    return e;
}

bool CronExpr::day_matches(int day, int weekday) const {
    // cron(8): when both are restricted, either; otherwise both (a `*` field matches every day).
    if (dom_star_ || dow_star_) return days_[day] && weekdays_[weekday];
    return days_[day] || weekdays_[weekday];
}

bool CronExpr::matches(const LocalTime& t) const {
    // Every field must match (the day by day_matches); the weekday is recomputed from the date.
    if (!minutes_[t.minute] || !hours_[t.hour] || !months_[t.month]) return false;
    const int weekday = weekday_of_days(days_from_civil(t.year, t.month, t.day));
    return day_matches(t.day, weekday);
}

int64_t CronExpr::next_local_match(int64_t from) const {
    // Walks the calendar from `from`, skipping whole months and days that cannot match.
    const int64_t start = floor_div(from + 59, 60) * 60;
    int64_t days = floor_div(start, kSecondsPerDay);
    const int64_t sod = start - days * kSecondsPerDay;
    int hour = static_cast<int>(sod / 3600);
    int minute = static_cast<int>(sod % 3600 / 60);
    const int64_t limit = days + kSearchDays;
    while (days <= limit) {
        const Civil c = civil_from_days(days);
        if (!months_[c.month]) {
            days = days_from_civil(c.year, c.month, 1) + days_in_month(c.year, c.month);
            hour = minute = 0;
            continue;
        }
        if (day_matches(c.day, weekday_of_days(days))) {
            for (; hour < 24; hour++, minute = 0) {
                if (!hours_[hour]) continue;
                for (; minute < 60; minute++)
                    if (minutes_[minute]) return days * kSecondsPerDay + hour * 3600 + minute * 60;
            }
        }
        days++;
        hour = minute = 0;
    }
    throw Error(sqlstate::internal_error,
                "cron expression \"" + text_ + "\" has no tick within 100 years");
}

TimePoint CronExpr::next_after(TimePoint t, const TimeZone& tz) const {
    // Walks matching wall-clock minutes in order and maps each to the instants it fires at.
    const int64_t t_sec = floor_div(t, kSecond);
    const int64_t c0 = naive_seconds(tz.to_local(t));
    const int64_t offset_now = c0 - t_sec;
    const bool fixed = fixed_time();

    // The earliest instant after t at which a wall-clock minute fires, if any, and its first
    // instant (its only one, the first of two, or the end of its gap).
    struct Firing {
        std::optional<TimePoint> at;
        TimePoint first;
    };
    auto fires_after_t = [&](int64_t naive) -> Firing {
        const LocalResolution r = tz.to_utc(local_from_naive(naive));
        Firing f{std::nullopt, r.first};
        switch (r.kind) {
            case LocalResolution::Kind::kUnique:
                if (r.first > t) f.at = r.first;
                break;
            case LocalResolution::Kind::kRepeated:
                if (r.first > t)
                    f.at = r.first;
                else if (!fixed && r.second > t)
                    f.at = r.second;
                break;
            case LocalResolution::Kind::kSkipped:
                if (fixed && r.first > t) f.at = r.first;
                break;
        }
        return f;
    };

    // If the clocks go back soon after t, wall-clock minutes up to that much before t's come
    // round again after t.
    const int64_t offset_ahead = tz.offset_seconds(t + kFoldAheadSeconds * kSecond);
    const int64_t lookback = offset_ahead < offset_now ? offset_now - offset_ahead : 0;

    std::optional<TimePoint> best;
    int64_t c = next_local_match(c0 - lookback);
    for (; c < c0; c = next_local_match(c + 60))
        if (auto f = fires_after_t(c); f.at) best = best ? std::min(*best, *f.at) : *f.at;
    // From c0 on, first instants never decrease with the wall-clock time, and a second
    // instant comes after its first: once a first instant reaches the best so far, nothing
    // later can beat it.
    for (int idle = 0;; idle++) {
        const Firing f = fires_after_t(c);
        if (f.at) best = best ? std::min(*best, *f.at) : *f.at;
        if (best && f.first >= *best) break;
        if (idle > kMaxIdleCandidates)
            throw Error(sqlstate::internal_error,
                        "cron expression \"" + text_ + "\" found no tick after " + format_utc(t));
        c = next_local_match(c + 60);
    }
    return *best;
}

bool CronExpr::operator==(const CronExpr& o) const {
    // The sets and the star flags decide every tick.
    return minutes_ == o.minutes_ && hours_ == o.hours_ && days_ == o.days_ &&
           months_ == o.months_ && weekdays_ == o.weekdays_ && minute_star_ == o.minute_star_ &&
           hour_star_ == o.hour_star_ && dom_star_ == o.dom_star_ && dow_star_ == o.dow_star_;
}

}  // namespace mv
