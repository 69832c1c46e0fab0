// Process-wide settings of matviews (the matviews.* GUCs), defined in module.cpp.
#pragma once

#include "boundary/pg.hpp"

namespace mv {

struct Settings {
    int launcher_naptime_ms = 5000;
    int swap_lock_timeout_ms = 100;
    int swap_lock_attempts = 20;
};

extern Settings settings;

}  // namespace mv
