// The subtransaction scope: runs one step in an internal subtransaction, like a PL/pgSQL
// BEGIN ... EXCEPTION block. On success the step's effects join the caller's transaction; on any
// error only the step is rolled back and the error comes back as data, so an operation can
// answer with an error response while the caller's transaction stays usable.
#pragma once

#include "boundary/guard.hpp"

namespace mv::pg {

// Runs step inside a subtransaction; returns nullopt on success, or the error it raised (a
// PostgreSQL ERROR or any C++ exception) after rolling the subtransaction back.
std::optional<ErrorInfo> in_subtransaction(const std::function<void()>& step);

}  // namespace mv::pg
