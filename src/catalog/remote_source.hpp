// The statements behind a remote source (ops/remote.hpp): where dblink lives, what the catalog
// says about a foreign server, and the probe that learns a remote query's columns. Column types
// come back as the remote's OID, typmod, schema and name, and are turned into local type names
// here, from the local catalog, so nothing the remote side sends is spliced into SQL as text.
#pragma once

#include "boundary/spi.hpp"

namespace mv::catalog {

// The schema the dblink extension is installed in, or nullopt when it is not installed.
std::optional<std::string> dblink_schema(pg::Spi& spi);

// What the local catalog says about a foreign server, for the current user.
struct ServerFacts {
    std::string wrapper;  // the foreign-data wrapper's name
    bool keeps_password;  // a password or sslpassword among the server's own options
    bool usable;          // USAGE on the server
    bool mapped;          // a user mapping for the current user or PUBLIC
    std::string current_user;
};
std::optional<ServerFacts> server_facts(pg::Spi& spi, const std::string& server);

// A remote query's column, typed with the local type of the same identity: a built-in type by
// its OID (fixed across servers of the same major version), any other type by schema and name.
struct RemoteColumn {
    std::string name;
    std::string remote_type;      // schema.name on the remote side, for messages
    Oid local_type = InvalidOid;  // InvalidOid: this database has no such type
    int32 typmod = -1;
    std::string display;   // format_type of the local type, for responses
    std::string sql_type;  // the same, schema-qualified, for the column list of the local query
};

// The probe's outcome: the columns, or the error it raised and whether it came from creating the
// temporary view on the remote side (which needs TEMPORARY there and a writable server).
struct Probe {
    std::vector<RemoteColumn> columns;
    std::optional<ErrorInfo> failure;
    bool failed_creating_view = false;
};

// Opens a dblink connection to server, creates a temporary view from sql in a remote
// transaction, reads its columns, rolls back and always disconnects.
Probe probe_remote_columns(pg::Spi& spi, const std::string& dblink_schema,
                           const std::string& server, const std::string& sql);

}  // namespace mv::catalog
