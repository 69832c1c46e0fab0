// The ProcessUtility hook: statements that need a database to themselves (DROP DATABASE, ALTER
// DATABASE ... RENAME / SET TABLESPACE, CREATE DATABASE ... TEMPLATE) first stop that
// database's scheduler, which would otherwise count as another session using it.
#pragma once

#include "boundary/guard.hpp"

namespace mv::worker {

// Installs the hook (call from _PG_init during preload).
void install_utility_hook();

}  // namespace mv::worker
