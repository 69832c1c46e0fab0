// The per-database scheduler process (see scheduler.cpp).
#pragma once

#include "boundary/guard.hpp"

extern "C" PGDLLEXPORT void matviews_scheduler_main(Datum arg);
