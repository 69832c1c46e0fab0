// Relations as PostgreSQL's catalogs describe them: resolving a parsed name the way regclass
// does, the schema a new view goes into, row estimates, usable unique indexes and the dependency
// graph of views on views.
#pragma once

#include "boundary/spi.hpp"
#include "core/names.hpp"

namespace mv::catalog {

struct RelationInfo {
    Oid oid = InvalidOid;
    std::string schema;
    std::string name;
    std::string quoted;  // quote_ident(schema).quote_ident(name)
    char relkind = 0;
    bool populated = false;
    Oid owner = InvalidOid;
    std::string owner_name;
};

// Resolves q to an existing relation of any kind, through search_path when unqualified.
std::optional<RelationInfo> find_relation(const QualifiedName& q);
// The relation with this OID, if it exists.
std::optional<RelationInfo> relation_by_oid(Oid relid);
// Resolves q to an existing materialized view: 42P01 when missing, 42809 for another kind.
RelationInfo require_matview(const QualifiedName& q);
// The same checks on a relation already looked up with find_relation(q).
RelationInfo require_matview(const std::optional<RelationInfo>& rel, const QualifiedName& q);
// Throws 42809: rel is not a materialized view (the detail says what it is).
[[noreturn]] void throw_not_matview(const RelationInfo& rel);
// The schema a new relation named q goes into: its own (3F000 when missing), else the first
// existing schema of search_path ($user and quoted entries as PostgreSQL handles them).
std::string creation_schema(const QualifiedName& q);
// The schemas of search_path that exist, in order (for unqualified lookups of definitions).
std::vector<std::string> search_path_schemas();
// 42501 unless the current role has the privileges of the relation's owner.
void require_owner(const RelationInfo& rel);
// "materialized view", "table", ... for messages.
std::string relkind_name(char relkind);
// The same with its article: "a table", "an index".
std::string relkind_with_article(char relkind);

// pg_class.reltuples as a row estimate; nullopt when never computed (-1).
std::optional<int64_t> estimated_rows(Oid relid);

// Whether the relation has a unique index REFRESH ... CONCURRENTLY accepts: unique, valid,
// immediate, btree, not partial, plain columns only (the rules of matview.c).
bool has_concurrent_refresh_index(pg::Spi& spi, Oid relid);

struct Dependent {
    Oid oid;
    std::string quoted;
    char relkind;
    int depth;  // longest path from the root: refreshing in this order is topological
};
// Every view and materialized view that depends on relid, directly or through other views
// (pg_depend + pg_rewrite), ordered so that each comes after everything it depends on.
std::vector<Dependent> dependents(pg::Spi& spi, Oid relid);

// count(*) of a relation; nullopt while it is not populated.
std::optional<int64_t> exact_rows(pg::Spi& spi, const RelationInfo& rel);
// The relation's comment.
std::optional<std::string> relation_comment(pg::Spi& spi, Oid relid);

// What a relation named like the managed unique index is, if there is one.
struct IndexSlot {
    bool taken = false;       // a relation of that name exists in the view's schema
    bool on_view = false;     // it is an index of the view
    bool same_index = false;  // ... unique, plain, on exactly these columns
};
IndexSlot index_slot(pg::Spi& spi, const RelationInfo& rel, const std::string& index,
                     const std::vector<std::string>& columns);

// The view's query as PostgreSQL stores it, deparsed with every name schema-qualified
// (search_path empty), so it means the same under any search_path.
std::string stored_query(pg::Spi& spi, Oid relid);

}  // namespace mv::catalog
