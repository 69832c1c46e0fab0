// Remote sources (see remote.hpp): the checks and error messages around the statements of
// catalog/remote_source. Column discovery creates a temporary view from the query on the remote
// side, inside a remote transaction that is rolled back, and reads each column's type OID, typmod,
// schema and name; the local query's column list is then written from the local catalog, so
// typmods (numeric(10,2), varchar(20)), arrays and quoted names survive and no remote text is
// spliced into SQL.
#include "ops/remote.hpp"

#include <cctype>

#include "catalog/query_check.hpp"
#include "catalog/remote_source.hpp"

namespace mv::ops {

namespace {

constexpr const char* kRedacted = "(a connection string, not recorded)";

constexpr const char* kMappingHint =
    "Keep passwords in a user mapping: CREATE SERVER src FOREIGN DATA WRAPPER dblink_fdw OPTIONS "
    "(host '...', "
    "dbname '...'); CREATE USER MAPPING FOR CURRENT_USER SERVER src OPTIONS (user '...', password "
    "'...'); then "
    "pass source => 'src'.";

bool is_uri(const std::string& text) {
    // Whether text is a libpq connection URI (postgresql:// or postgres://).
    return text.rfind("postgresql://", 0) == 0 || text.rfind("postgres://", 0) == 0;
}

bool carries_password(const std::string& text) {
    // Whether a connection string carries a password: a password or sslpassword keyword (also as
    // a URI parameter), or user:password@ in a URI.
    std::string lower;
    for (char c : text)
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (lower.find("password") != std::string::npos) return true;
    if (!is_uri(text)) return false;
    size_t start = text.find("://") + 3;
    size_t end = text.find_first_of("/?", start);
    std::string authority = text.substr(start, end == std::string::npos ? end : end - start);
    size_t at = authority.rfind('@');
    return at != std::string::npos && authority.substr(0, at).find(':') != std::string::npos;
}

std::string dblink_schema(pg::Spi& spi) {
    // The schema dblink is installed in; 42883 when it is not installed.
    auto schema = catalog::dblink_schema(spi);
    if (!schema)
        throw Error(
            "42883",
            "remote sources need the dblink extension, which is not installed in this database")
            .hint("Run CREATE EXTENSION dblink;");
    return *schema;
}

void check_server(pg::Spi& spi, const std::string& server) {
    // The server exists, uses dblink_fdw or postgres_fdw, keeps no password in its options, the
    // current user may use it (USAGE) and has a user mapping for it (its own or PUBLIC's).
    auto facts = catalog::server_facts(spi, server);
    if (!facts)
        throw Error(sqlstate::undefined_object, fmt::format("server \"{}\" does not exist", server))
            .hint(
                "Create it with CREATE SERVER ... FOREIGN DATA WRAPPER dblink_fdw (or "
                "postgres_fdw) OPTIONS "
                "(host '...', port '...', dbname '...'), or check the name in pg_foreign_server.");
    if (facts->wrapper != "dblink_fdw" && facts->wrapper != "postgres_fdw")
        throw Error(
            sqlstate::wrong_object_type,
            fmt::format(
                "server \"{}\" uses the foreign-data wrapper {}, not dblink_fdw or postgres_fdw",
                server, facts->wrapper))
            .hint("Use a server of dblink_fdw or postgres_fdw.");
    if (facts->keeps_password)
        throw Error(
            sqlstate::invalid_parameter_value,
            fmt::format("server \"{}\" keeps a password in its options, which every role can read",
                        server))
            .hint(kMappingHint);
    const std::string& user = facts->current_user;
    if (!facts->usable)
        throw Error(sqlstate::insufficient_privilege,
                    fmt::format("permission denied for foreign server {}", server))
            .detail(
                fmt::format("Role \"{}\" has no USAGE privilege on server \"{}\".", user, server))
            .hint(fmt::format("Run GRANT USAGE ON FOREIGN SERVER {} TO {}; as the server's owner.",
                              pg::quote_ident(server), pg::quote_ident(user)));
    if (!facts->mapped)
        throw Error(sqlstate::undefined_object,
                    fmt::format("user mapping not found for \"{}\" on server \"{}\"", user, server))
            .hint(fmt::format(
                "Run CREATE USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (user '...', password "
                "'...');",
                pg::quote_ident(server)));
}

ErrorInfo explain_failure(ErrorInfo info, const std::string& server, bool creating_view) {
    // Adds what a failed probe needs: remote errors keep the remote SQLSTATE, message, detail
    // and hint (dblink marks them with its connection name in the context); a remote side that
    // refuses the temporary view (no TEMPORARY privilege, read-only), connection and password
    // failures get a hint of their own.
    if (info.context.find("on dblink connection named") != std::string::npos) {
        if (info.detail.empty())
            info.detail =
                fmt::format("The error came from the remote database of server \"{}\".", server);
        if (info.hint.empty() && creating_view && info.sqlstate == "25006")
            info.hint =
                "matviews finds the columns through a temporary view on the remote database, "
                "which a read-only server (a hot standby, default_transaction_read_only) refuses: "
                "use a server that names the primary.";
        if (info.hint.empty() && creating_view && info.sqlstate == sqlstate::insufficient_privilege)
            info.hint =
                "matviews finds the columns through a temporary view on the remote database: the "
                "mapped user needs the TEMPORARY privilege on that database, and USAGE on the "
                "schemas the query names.";
        if (info.hint.empty()) info.hint = "Check the query against the remote database.";
    } else if (info.sqlstate == sqlstate::sqlclient_unable_to_establish_sqlconnection &&
               info.hint.empty()) {
        info.hint = fmt::format(
            "Check the options of server {} (host, port, dbname) and the user and password of "
            "the user mapping.",
            pg::quote_ident(server));
    } else if (info.sqlstate == "2F003" && info.hint.empty()) {
        info.hint = fmt::format(
            "dblink requires a password for roles that are not superusers: ALTER USER MAPPING "
            "FOR CURRENT_USER SERVER {} OPTIONS (ADD password '...');",
            pg::quote_ident(server));
    }
    return info;
}

}  // namespace

bool is_connection_string(const std::string& source) {
    // key=value pairs or a postgresql:// URI, rather than a server name.
    return is_uri(source) || source.find('=') != std::string::npos;
}

std::string redact_source(const std::string& source) {
    // The source as it may be recorded: any connection string is replaced whole. Only a server
    // name is kept, since libpq accepts a password in more forms than a check can list.
    return is_connection_string(source) ? kRedacted : source;
}

void check_source(const std::string& source) {
    // 22023 for a connection string, with a message of its own when it carries a password.
    if (!is_connection_string(source)) return;
    if (carries_password(source))
        throw Error(sqlstate::invalid_parameter_value,
                    "the source is a connection string with a password, which would be readable "
                    "in pg_matviews")
            .hint(kMappingHint);
    throw Error(sqlstate::invalid_parameter_value,
                "source must name a foreign server, not a connection string")
        .hint(kMappingHint);
}

std::string remote_query(Context& ctx, const std::string& source, const std::string& sql) {
    // Check, discover, check types locally, assemble.
    if (is_connection_string(source))
        ctx.request.set("source", kRedacted);  // never recorded in matviews.runs
    check_source(source);
    catalog::check_single_query_any_quoting(sql);
    std::string schema = dblink_schema(ctx.spi);
    check_server(ctx.spi, source);
    catalog::Probe probe = catalog::probe_remote_columns(ctx.spi, schema, source, sql);
    if (probe.failure)
        throw Error(explain_failure(*probe.failure, source, probe.failed_creating_view));
    if (probe.columns.empty())
        throw Error(sqlstate::invalid_parameter_value, "the remote query returns no columns")
            .hint("Select at least one column.");
    std::string list;
    Json described = Json::array();
    for (const auto& c : probe.columns) {
        if (!OidIsValid(c.local_type))
            throw Error(sqlstate::undefined_object,
                        fmt::format("column \"{}\" of the remote query has type {}, which this "
                                    "database does not have",
                                    c.name, c.remote_type))
                .hint(
                    "Create the type here, in a schema of the same name, or cast the column in the "
                    "remote query, e.g. ::text.");
        list += (list.empty() ? "" : ", ") + pg::quote_ident(c.name) + " " + c.sql_type;
        Json col = Json::object();
        col.set("name", c.name);
        col.set("type", c.display);
        described.push(std::move(col));
    }
    ctx.response.set("source", source);
    ctx.response.set("columns", std::move(described));
    return fmt::format("SELECT * FROM {}.dblink({}, {}) AS remote({})", pg::quote_ident(schema),
                       pg::quote_literal(source), pg::quote_literal(sql), list);
}

}  // namespace mv::ops
