// Remote-source statements (see remote_source.hpp).
#include "catalog/remote_source.hpp"

#include "boundary/scopes.hpp"
#include "boundary/subxact.hpp"

extern "C" {
#include "access/transam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
}

namespace mv::catalog {

std::optional<std::string> dblink_schema(pg::Spi& spi) {
    auto r = spi.exec(
        "SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace "
        "WHERE e.extname OPERATOR(pg_catalog.=) 'dblink'");
    if (r.empty()) return std::nullopt;
    return r.first()[0].as_string();
}

std::optional<ServerFacts> server_facts(pg::Spi& spi, const std::string& server) {
    auto r = spi.exec(
        "SELECT w.fdwname::pg_catalog.text, "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_options_to_table(s.srvoptions) o "
        "WHERE o.option_name OPERATOR(pg_catalog.=) ANY "
        "('{password,sslpassword}'::pg_catalog.text[])), "
        "pg_catalog.has_server_privilege(s.oid, 'USAGE'), "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_user_mappings m "
        "WHERE m.srvid OPERATOR(pg_catalog.=) s.oid AND (m.usename OPERATOR(pg_catalog.=) "
        "CURRENT_USER OR m.usename OPERATOR(pg_catalog.=) 'public')), "
        "CURRENT_USER::pg_catalog.text "
        "FROM pg_catalog.pg_foreign_server s "
        "JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid OPERATOR(pg_catalog.=) s.srvfdw "
        "WHERE s.srvname OPERATOR(pg_catalog.=) $1",
        {pg::Param::text(server)});
    if (r.empty()) return std::nullopt;
    const auto& row = r.first();
    return ServerFacts{row[0].as_string(), row[1].as_bool(), row[2].as_bool(), row[3].as_bool(),
                       row[4].as_string()};
}

namespace {

Oid local_type_of(Oid remote_oid, const std::string& schema, const std::string& name) {
    // A built-in type is the same type on both sides; any other is found by schema and name.
    if (remote_oid < FirstNormalObjectId) {
        bool exists =
            pg::call([&] { return SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(remote_oid)); });
        return exists ? remote_oid : InvalidOid;
    }
    return pg::call([&] {
        Oid nsp = get_namespace_oid(schema.c_str(), true);
        if (!OidIsValid(nsp)) return InvalidOid;
        return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum(name.c_str()),
                               ObjectIdGetDatum(nsp));
    });
}

std::string format_type(Oid type, int32 typmod, bool qualified) {
    bits16 flags = FORMAT_TYPE_TYPEMOD_GIVEN | (qualified ? FORMAT_TYPE_FORCE_QUALIFY : 0);
    const char* text = pg::call([&] { return format_type_extended(type, typmod, flags); });
    return text;
}

}  // namespace

Probe probe_remote_columns(pg::Spi& spi, const std::string& dblink_schema,
                           const std::string& server, const std::string& sql) {
    // dblink's connection names are local to this session, so a fixed name cannot collide.
    const std::string conn = "matviews_probe";
    std::string ns = pg::quote_ident(dblink_schema);
    Probe probe;
    probe.failure = pg::in_subtransaction([&] {
        spi.exec(fmt::format("SELECT {}.dblink_connect($1, $2)", ns),
                 {pg::Param::text(conn), pg::Param::text(server)});
        spi.exec(fmt::format("SELECT {}.dblink_exec($1, 'BEGIN')", ns), {pg::Param::text(conn)});
        probe.failed_creating_view = true;
        spi.exec(fmt::format("SELECT {}.dblink_exec($1, $2)", ns),
                 {pg::Param::text(conn),
                  pg::Param::text("CREATE TEMPORARY VIEW matviews_probe AS\n" + sql)});
        probe.failed_creating_view = false;
        auto r = spi.exec(
            fmt::format("SELECT name, type_oid, typmod, type_schema, type_name FROM {}.dblink($1, "
                        "$2) AS t(name pg_catalog.text, type_oid pg_catalog.oid, typmod "
                        "pg_catalog.int4, type_schema pg_catalog.text, type_name pg_catalog.text)",
                        ns),
            {pg::Param::text(conn),
             pg::Param::text("SELECT a.attname::pg_catalog.text, a.atttypid, a.atttypmod, "
                             "n.nspname::pg_catalog.text, t.typname::pg_catalog.text "
                             "FROM pg_catalog.pg_attribute a "
                             "JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid "
                             "JOIN pg_catalog.pg_namespace n "
                             "ON n.oid OPERATOR(pg_catalog.=) t.typnamespace "
                             "WHERE a.attrelid OPERATOR(pg_catalog.=) "
                             "'pg_temp.matviews_probe'::pg_catalog.regclass "
                             "AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped "
                             "ORDER BY a.attnum")});
        for (const auto& row : r.rows) {
            RemoteColumn c;
            c.name = row[0].as_string();
            std::string schema = row[3].as_string();
            std::string name = row[4].as_string();
            c.remote_type = schema + "." + name;
            c.typmod = static_cast<int32>(row[2].as_int());
            c.local_type = local_type_of(static_cast<Oid>(row[1].as_int()), schema, name);
            if (OidIsValid(c.local_type)) {
                c.display = format_type(c.local_type, c.typmod, false);
                c.sql_type = format_type(c.local_type, c.typmod, true);
            }
            probe.columns.push_back(std::move(c));
        }
        spi.exec(fmt::format("SELECT {}.dblink_exec($1, 'ROLLBACK')", ns), {pg::Param::text(conn)});
    });
    spi.exec(fmt::format("SELECT {0}.dblink_disconnect($1) WHERE $1 OPERATOR(pg_catalog.=) ANY "
                         "({0}.dblink_get_connections())",
                         ns),
             {pg::Param::text(conn)});
    return probe;
}

}  // namespace mv::catalog
