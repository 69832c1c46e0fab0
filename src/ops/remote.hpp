// Remote sources (SPEC §6): a view whose query runs on the database a foreign server names
// (dblink_fdw or postgres_fdw), as the caller's user mapping, through dblink. The columns are
// discovered from the remote query itself; no password ever appears in a view definition.
// Remote sources, user mappings and every error are described in docs/remote.md.
#pragma once

#include "ops/runner.hpp"

namespace mv::ops {

// Whether a source is a connection string (key=value pairs, or a postgresql:// URI) rather than
// the name of a foreign server.
bool is_connection_string(const std::string& source);

// The source as it may be recorded in a request or a run: a connection string (refused anyway) is
// replaced by a fixed text, a server name is returned as is.
std::string redact_source(const std::string& source);

// Refuses a source that is a connection string rather than a server name (22023, with its own
// message when it carries a password). Cheap and local: callers may run it before anything else.
void check_source(const std::string& source);

// Checks the source and the remote query, discovers its columns, and returns the local query:
// SELECT * FROM dblink('<server>', '<sql>') AS t(<columns with types>). Errors: dblink missing
// (42883, hint CREATE EXTENSION dblink), a connection string (22023; the request's source is
// redacted), an unknown server (42704), a server of another wrapper (42809), no USAGE on the server
// (42501), no user mapping (42704), a remote error (the remote SQLSTATE), a column type this
// database lacks (42704).
std::string remote_query(Context& ctx, const std::string& source, const std::string& sql);

}  // namespace mv::ops
