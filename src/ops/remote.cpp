// Remote sources (see remote.hpp). Column discovery creates a temporary view from the query on
// the remote side, inside a remote transaction that is rolled back, and reads its columns with
// format_type, so names, types and typmods (numeric(10,2), varchar(20), arrays, ...) come out
// exactly as the remote database sees them.
#include "ops/remote.hpp"

#include "boundary/scopes.hpp"
#include "boundary/subxact.hpp"

namespace mv::ops {

namespace {

constexpr const char* kMappingHint =
    "Keep passwords in a user mapping: CREATE SERVER src FOREIGN DATA WRAPPER dblink_fdw OPTIONS "
    "(host '...', "
    "dbname '...'); CREATE USER MAPPING FOR CURRENT_USER SERVER src OPTIONS (user '...', password "
    "'...'); then "
    "pass source => 'src'.";

bool mentions_password(const std::string& text) {
    // Whether a connection string or option list carries a password.
    std::string lower;
    for (char c : text)
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return lower.find("password") != std::string::npos;
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
    // The server exists, uses dblink_fdw or postgres_fdw, keeps no password in its options, and
    // the current user has a user mapping for it.
    auto r = spi.exec(
        "SELECT w.fdwname::pg_catalog.text, COALESCE(pg_catalog.array_to_string(s.srvoptions, ' "
        "'), '') "
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
    if (mentions_password(r.first()[1].as_string()))
        throw Error(
            sqlstate::invalid_parameter_value,
            fmt::format("server \"{}\" keeps a password in its options, which every role can read",
                        server))
            .hint(kMappingHint);
    auto m = spi.exec(
        "SELECT 1 FROM pg_catalog.pg_user_mappings WHERE srvname OPERATOR(pg_catalog.=) $1 "
        "AND (usename OPERATOR(pg_catalog.=) CURRENT_USER OR usename OPERATOR(pg_catalog.=) "
        "'public')",
        {pg::Param::text(server)});
    if (m.empty())
        throw Error(
            sqlstate::undefined_object,
            fmt::format("user mapping not found for \"{}\" on server \"{}\"",
                        spi.scalar("SELECT CURRENT_USER::pg_catalog.text").as_string(), server))
            .hint(fmt::format(
                "Run CREATE USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (user '...', password "
                "'...');",
                pg::quote_ident(server)));
}

struct Column {
    std::string name;
    std::string type;
};

std::vector<Column> discover_columns(pg::Spi& spi, const std::string& schema,
                                     const std::string& source, const std::string& sql) {
    // Opens a named dblink connection, builds a temporary view from sql remotely, reads its
    // columns, rolls the remote transaction back and always disconnects.
    std::string conn = fmt::format("matviews_probe_{}", pg::backend_pid());
    std::string ns = pg::quote_ident(schema);
    std::vector<Column> columns;
    auto failure = pg::in_subtransaction([&] {
        spi.exec(fmt::format("SELECT {}.dblink_connect($1, $2)", ns),
                 {pg::Param::text(conn), pg::Param::text(source)});
        spi.exec(fmt::format("SELECT {}.dblink_exec($1, 'BEGIN')", ns), {pg::Param::text(conn)});
        spi.exec(fmt::format("SELECT {}.dblink_exec($1, $2)", ns),
                 {pg::Param::text(conn),
                  pg::Param::text("CREATE TEMPORARY VIEW matviews_probe AS\n" + sql)});
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
    if (failure) {
        ErrorInfo info = *failure;
        if (info.context.find("dblink") != std::string::npos || info.sqlstate == "08001") {
            info.detail =
                info.detail.empty() ? "The error came from the remote database." : info.detail;
            if (info.hint.empty())
                info.hint =
                    "Check the query against the remote database, and the server and user mapping.";
        }
        throw Error(info);
    }
    return columns;
}

}  // namespace

std::string remote_query(Context& ctx, const std::string& source, const std::string& sql) {
    // Check, discover, check types locally, assemble.
    if (source.find('=') != std::string::npos) {
        if (mentions_password(source))
            throw Error(sqlstate::invalid_parameter_value,
                        "the source is a connection string with a password, which would be "
                        "readable in pg_matviews")
                .hint(kMappingHint);
        throw Error(sqlstate::invalid_parameter_value,
                    "source must name a foreign server, not a connection string")
            .hint(kMappingHint);
    }
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
