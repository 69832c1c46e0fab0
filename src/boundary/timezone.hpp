// The scheduling core's TimeZone, implemented with PostgreSQL's own time-zone code (pg_tzset,
// pg_localtime), so cron schedules follow the same tz database as timestamptz.
#pragma once

#include "boundary/guard.hpp"
#include "core/cron.hpp"

namespace mv::pg {

// A zone by name; 22023 when PostgreSQL does not know it.
std::shared_ptr<const TimeZone> time_zone(const std::string& name);

// The current time as microseconds since the Unix epoch, and conversions with TimestampTz.
TimePoint now();
TimePoint from_timestamptz(int64_t ts);
int64_t to_timestamptz(TimePoint t);

}  // namespace mv::pg
