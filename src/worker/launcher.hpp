// The launcher: the one cluster-wide matviews process, registered at postmaster start.
#pragma once

#include "boundary/guard.hpp"

namespace mv::worker {

// Registers the launcher background worker (call from _PG_init during preload).
void register_launcher();

}  // namespace mv::worker

extern "C" PGDLLEXPORT void matviews_launcher_main(Datum arg);
