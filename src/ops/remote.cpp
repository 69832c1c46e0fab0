// Remote sources (see remote.hpp). Column discovery creates a temporary view from the query on
// the remote side, inside a remote transaction that is rolled back, and reads its columns with
// format_type, so names, types and typmods (numeric(10,2), varchar(20), arrays, ...) come out
// exactly as the remote database sees them.
#include "ops/remote.hpp"

#include <cctype>

#include "boundary/scopes.hpp"
#include "boundary/subxact.hpp"

namespace mv::ops {

namespace {

constexpr const char* kRedacted = "(a connection string with a password, not recorded)";

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
    auto r = spi.exec(
        "SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace "
        "WHERE e.extname OPERATOR(pg_catalog.=) 'dblink'");
    if (r.empty())
        throw Error(
            "42883",
            "remote sources need the dblink extension, which is not installed in this database")
            .hint("Run CREATE EXTENSION dblink;");
    return r.first()[0].as_string();
}

void check_server(pg::Spi& spi, const std::string& server) {
    // The server exists, uses dblink_fdw or postgres_fdw, keeps no password in its options, the
    // current user may use it (USAGE) and has a user mapping for it (its own or PUBLIC's).
    auto r = spi.exec(
        "SELECT w.fdwname::pg_catalog.text, "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_options_to_table(s.srvoptions) o "
        "WHERE o.option_name OPERATOR(pg_catalog.=) ANY "
        "('{password,sslpassword}'::pg_catalog.text[])), "
        "pg_catalog.has_server_privilege(s.oid, 'USAGE') "
        "FROM pg_catalog.pg_foreign_server s "
        "JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid OPERATOR(pg_catalog.=) s.srvfdw "
        "WHERE s.srvname OPERATOR(pg_catalog.=) $1",
        {pg::Param::text(server)});
    if (r.empty())
        throw Error(sqlstate::undefined_object, fmt::format("server \"{}\" does not exist", server))
            .hint(
                "Create it with CREATE SERVER ... FOREIGN DATA WRAPPER dblink_fdw (or "
                "postgres_fdw) OPTIONS "
                "(host '...', port '...', dbname '...'), or check the name in pg_foreign_server.");
    std::string fdw = r.first()[0].as_string();
    if (fdw != "dblink_fdw" && fdw != "postgres_fdw")
        throw Error(
            sqlstate::wrong_object_type,
            fmt::format(
                "server \"{}\" uses the foreign-data wrapper {}, not dblink_fdw or postgres_fdw",
                server, fdw))
            .hint("Use a server of dblink_fdw or postgres_fdw.");
    if (r.first()[1].as_bool())
        throw Error(
            sqlstate::invalid_parameter_value,
            fmt::format("server \"{}\" keeps a password in its options, which every role can read",
                        server))
            .hint(kMappingHint);
    std::string user = spi.scalar("SELECT CURRENT_USER::pg_catalog.text").as_string();
    if (!r.first()[2].as_bool())
        throw Error(sqlstate::insufficient_privilege,
                    fmt::format("permission denied for foreign server {}", server))
            .detail(
                fmt::format("Role \"{}\" has no USAGE privilege on server \"{}\".", user, server))
            .hint(fmt::format("Run GRANT USAGE ON FOREIGN SERVER {} TO {}; as the server's owner.",
                              pg::quote_ident(server), pg::quote_ident(user)));
    auto m = spi.exec(
        "SELECT 1 FROM pg_catalog.pg_user_mappings WHERE srvname OPERATOR(pg_catalog.=) $1 "
        "AND (usename OPERATOR(pg_catalog.=) CURRENT_USER OR usename OPERATOR(pg_catalog.=) "
        "'public')",
        {pg::Param::text(server)});
    if (m.empty())
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

struct Column {
    std::string name;
    std::string type;
};

std::vector<Column> discover_columns(pg::Spi& spi, const std::string& schema,
                                     const std::string& source, const std::string& sql) {
    // Opens a named dblink connection, builds a temporary view from sql remotely, reads its
    // columns, rolls the remote transaction back and always disconnects.
    // dblink's connection names are local to this session, so a fixed name cannot collide.
    const std::string conn = "matviews_probe";
    std::string ns = pg::quote_ident(schema);
    std::vector<Column> columns;
    bool creating_view = false;  // whether a failure came from CREATE TEMPORARY VIEW
    auto failure = pg::in_subtransaction([&] {
        spi.exec(fmt::format("SELECT {}.dblink_connect($1, $2)", ns),
                 {pg::Param::text(conn), pg::Param::text(source)});
        spi.exec(fmt::format("SELECT {}.dblink_exec($1, 'BEGIN')", ns), {pg::Param::text(conn)});
        creating_view = true;
        spi.exec(fmt::format("SELECT {}.dblink_exec($1, $2)", ns),
                 {pg::Param::text(conn),
                  pg::Param::text("CREATE TEMPORARY VIEW matviews_probe AS\n" + sql)});
        creating_view = false;
        auto r = spi.exec(
            fmt::format("SELECT name, type FROM {}.dblink($1, $2) AS t(name pg_catalog.text, type "
                        "pg_catalog.text)",
                        ns),
            {pg::Param::text(conn),
             pg::Param::text("SELECT a.attname::pg_catalog.text, "
                             "pg_catalog.format_type(a.atttypid, a.atttypmod) "
                             "FROM pg_catalog.pg_attribute a "
                             "WHERE a.attrelid OPERATOR(pg_catalog.=) "
                             "'pg_temp.matviews_probe'::pg_catalog.regclass "
                             "AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped "
                             "ORDER BY a.attnum")});
        for (const auto& row : r.rows)
            columns.push_back(Column{row[0].as_string(), row[1].as_string()});
        spi.exec(fmt::format("SELECT {}.dblink_exec($1, 'ROLLBACK')", ns), {pg::Param::text(conn)});
    });
    spi.exec(fmt::format("SELECT {0}.dblink_disconnect($1) WHERE $1 OPERATOR(pg_catalog.=) ANY "
                         "({0}.dblink_get_connections())",
                         ns),
             {pg::Param::text(conn)});
    if (failure) throw Error(explain_failure(*failure, source, creating_view));
    return columns;
}

}  // namespace

bool is_connection_string(const std::string& source) {
    // key=value pairs or a postgresql:// URI, rather than a server name.
    return is_uri(source) || source.find('=') != std::string::npos;
}

std::string redact_source(const std::string& source) {
    // The source as it may be recorded: a connection string with a password is replaced whole.
    return is_connection_string(source) && carries_password(source) ? kRedacted : source;
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
    if (redact_source(source) != source)
        ctx.request.set("source", kRedacted);  // never recorded in matviews.runs
    check_source(source);
    std::string schema = dblink_schema(ctx.spi);
    check_server(ctx.spi, source);
    std::vector<Column> columns = discover_columns(ctx.spi, schema, source, sql);
    if (columns.empty())
        throw Error(sqlstate::invalid_parameter_value, "the remote query returns no columns")
            .hint("Select at least one column.");
    std::string list;
    Json described = Json::array();
    for (const auto& c : columns) {
        auto local = ctx.spi.scalar("SELECT pg_catalog.to_regtype($1) IS NOT NULL",
                                    {pg::Param::text(c.type)});
        if (!local.as_bool())
            throw Error(sqlstate::undefined_object,
                        fmt::format("column \"{}\" of the remote query has type {}, which this "
                                    "database does not have",
                                    c.name, c.type))
                .hint("Create the type here, or cast the column in the remote query, e.g. ::text.");
        list += (list.empty() ? "" : ", ") + pg::quote_ident(c.name) + " " + c.type;
        Json col = Json::object();
        col.set("name", c.name);
        col.set("type", c.type);
        described.push(std::move(col));
    }
    ctx.response.set("source", source);
    ctx.response.set("columns", std::move(described));
    return fmt::format("SELECT * FROM {}.dblink({}, {}) AS remote({})", pg::quote_ident(schema),
                       pg::quote_literal(source), pg::quote_literal(sql), list);
}

}  // namespace mv::ops
