// PostgreSQL's time zones for the scheduling core (see timezone.hpp).
#include "boundary/timezone.hpp"

extern "C" {
#include "pgtime.h"
#include "utils/timestamp.h"
}

namespace mv::pg {

namespace {

// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
constexpr int64_t kEpochShift =
    int64_t(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC;

class PgZone final : public TimeZone {
  public:
    explicit PgZone(pg_tz* tz) : tz_(tz) {}
    LocalTime to_local(TimePoint utc) const override {
        // pg_localtime on whole seconds, rounded toward the past.
        pg_time_t t =
            static_cast<pg_time_t>(utc >= 0 ? utc / 1000000 : -((-utc + 999999) / 1000000));
        struct pg_tm* tm = pg_localtime(&t, tz_);
        LocalTime l{};
        if (tm == nullptr) return l;
        l.year = tm->tm_year + 1900;
        l.month = tm->tm_mon + 1;
        l.day = tm->tm_mday;
        l.hour = tm->tm_hour;
        l.minute = tm->tm_min;
        l.second = tm->tm_sec;
        l.weekday = tm->tm_wday;
        return l;
    }

  private:
    pg_tz* tz_;
};

}  // namespace

std::shared_ptr<const TimeZone> time_zone(const std::string& name) {
    // pg_tzset caches zones for the life of the process.
    const char* n = name.c_str();
    pg_tz* tz = call([&] { return pg_tzset(n); });
    if (tz == nullptr)
        throw Error(sqlstate::invalid_parameter_value,
                    fmt::format("unknown time zone \"{}\"", name))
            .hint("Use a name from pg_timezone_names, such as 'UTC' or 'Europe/Paris'.");
    return std::make_shared<PgZone>(tz);
}

TimePoint now() {
    return from_timestamptz(GetCurrentTimestamp());
}
TimePoint from_timestamptz(int64_t ts) {
    return ts + kEpochShift;
}
int64_t to_timestamptz(TimePoint t) {
    return t - kEpochShift;
}

}  // namespace mv::pg
