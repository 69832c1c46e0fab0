// Remote sources (SPEC §6): a view whose query runs on the database a foreign server names
// (dblink_fdw or postgres_fdw), as the caller's user mapping, through dblink. The columns are
// discovered from the remote query itself; no password ever appears in a view definition.
#pragma once

#include "ops/runner.hpp"

namespace mv::ops {

// Checks the source and the remote query, discovers its columns, and returns the local query:
// SELECT * FROM dblink('<server>', '<sql>') AS t(<columns with types>). Errors: dblink missing
// (42883, hint CREATE EXTENSION dblink), a connection string with a password (22023), an
// unknown server (42704), no user mapping (42704), a remote error (the remote SQLSTATE), a
// column type this database lacks (42704).
std::string remote_query(Context& ctx, const std::string& source, const std::string& sql);

}  // namespace mv::ops
