// Process-wide settings of matviews (the matviews.* GUCs), defined in module.cpp.
#pragma once

#include "boundary/pg.hpp"

namespace mv {

struct Settings {
    int launcher_naptime_ms = 5000;
    int swap_lock_timeout_ms = 100;
    int swap_lock_attempts = 20;
    int max_workers = 2;
    char* timezone = nullptr;  // matviews.timezone, validated by pg_tzset
    int runs_retention_s = 30 * 24 * 3600;
    int scheduler_naptime_ms = 10000;
    double incremental_max_fraction = 0.3;
};

extern Settings settings;

}  // namespace mv
