// What a swap must carry from the old relation to the new one, read from the catalogs: index
// definitions (rebuilt from pg_index, pg_opclass, pg_collation and pg_am, never by editing index
// definition text), ownership, privileges (table and column), comments, storage parameters,
// tablespace and access method; and every dependent view and materialized view with its own.
#pragma once

#include "boundary/spi.hpp"
#include "catalog/relation.hpp"

namespace mv::catalog {

struct IndexColumn {
    std::string key;        // column name or parenthesized expression (pg_get_indexdef(i, k))
    std::string opclass;    // schema-qualified operator class ("" for INCLUDE columns)
    std::string collation;  // schema-qualified collation, "" when none
    bool desc = false;
    bool nulls_first = false;
    bool included = false;  // an INCLUDE column
};

struct IndexSpec {
    std::string name;
    bool unique = false;
    bool nulls_not_distinct = false;
    std::string method;    // access method name
    bool ordered = false;  // amcanorder: ASC/DESC and NULLS apply
    std::vector<IndexColumn> columns;
    std::vector<std::string> reloptions;  // "key=value"
    std::string tablespace;               // "" for the database default
    std::string predicate;                // "" when not partial
    std::optional<std::string> comment;
    bool clustered = false;  // CLUSTER ON this index
    Oid oid = InvalidOid;    // the index itself
};

// The CREATE INDEX statement for spec, named `index_name`, on `table` (already quoted).
std::string index_statement(const IndexSpec& spec, const std::string& index_name,
                            const std::string& table);

struct Grant {
    std::string privilege;  // SELECT, INSERT, ...
    std::string grantee;    // quoted role name or PUBLIC
    bool grantable = false;
    std::string column;        // "" for a table privilege
    Oid grantor = InvalidOid;  // the role that granted it
    std::string grantor_name;  // its name, quoted
    bool by_owner = true;      // granted by the relation's owner
};

// A statement that re-creates part of a relation's state. `as_role` is InvalidOid when the caller
// runs it; otherwise it must run as that role: a privilege granted by a role other than the
// owner (which held the grant option) is granted again by that same role, so the grantor, and
// what REVOKE ... CASCADE removes, stay the same.
struct Statement {
    std::string sql;
    Oid as_role = InvalidOid;
};

// Per-column settings that differ from the defaults: the statistics target and n_distinct
// options (what ANALYZE collects), storage and compression.
struct ColumnSettings {
    std::string column;
    std::optional<int> statistics;           // attstattarget, when set
    std::vector<std::string> options;        // n_distinct / n_distinct_inherited, "key=value"
    std::optional<std::string> storage;      // PLAIN, EXTERNAL, EXTENDED, MAIN, when not the type's
    std::optional<std::string> compression;  // pglz or lz4, when set
};

struct RelationSpec {
    std::string owner;          // role name
    bool has_acl = false;       // relacl is not NULL (explicit privileges)
    std::vector<Grant> grants;  // table and column privileges
    std::optional<std::string> comment;
    std::vector<std::pair<std::string, std::string>> column_comments;  // column, comment
    std::vector<ColumnSettings> column_settings;
    std::vector<std::string> reloptions;  // "key=value"
    std::string tablespace;               // "" for the default
    std::string access_method;            // "" for heap/none
};

std::vector<IndexSpec> index_specs(pg::Spi& spi, Oid relid);
RelationSpec relation_spec(pg::Spi& spi, Oid relid);

// The statements that give `target` (quoted; `kind` is "MATERIALIZED VIEW", "VIEW", ...) the
// owner, privileges and comments of spec. Column privileges and comments of columns that target
// lacks (a redefinition removed them) are left out: they go with their column.
std::vector<Statement> ownership_and_grants(const RelationSpec& spec, const std::string& kind,
                                            const std::string& target,
                                            const std::set<std::string>& target_columns);
// Whether two reads of a relation's spec give it the same owner and privileges.
bool same_privileges(const RelationSpec& a, const RelationSpec& b);
// The statements that take away from `target` every privilege ownership_and_grants(spec, ...)
// gave it, so that another spec's can be given instead.
std::vector<Statement> revoke_grants(const RelationSpec& spec, const std::string& target);
// Whether the locked read of a relation's privileges lacks any the build gave it (a grant
// revoked, the owner changed, an explicit ACL replacing the default or the other way round).
bool privileges_taken_away(const RelationSpec& built, const RelationSpec& locked);
// Whether any of the dependents' queries names one of the replaced relations other than as a
// relation it reads: a regclass constant, its row type or array type, one of its indexes. Their
// queries then cannot be re-pointed by OID (mapped_definition): only their text, parsed again
// once the old relation is gone, follows the name.
bool named_beyond_relations(pg::Spi& spi, const std::vector<Oid>& dependents,
                            const std::vector<Oid>& replaced);
// Whether two reads of a relation's spec give it the same storage parameters, tablespace, access
// method and column settings.
bool same_settings(const RelationSpec& a, const RelationSpec& b);
// COMMENT ON the relation (NULL when it had none).
std::string relation_comment(const RelationSpec& spec, const std::string& kind,
                             const std::string& target);
// COMMENT ON COLUMN for each commented column that target has.
std::vector<std::string> column_comments(const RelationSpec& spec, const std::string& target,
                                         const std::set<std::string>& target_columns);
// ALTER ... ALTER COLUMN ... SET STATISTICS / SET (...) / SET STORAGE / SET COMPRESSION for each
// column of spec.column_settings that target has (kind: "MATERIALIZED VIEW", "VIEW").
std::vector<std::string> column_settings(const RelationSpec& spec, const std::string& kind,
                                         const std::string& target,
                                         const std::set<std::string>& target_columns);
// relation_comment then column_comments.
std::vector<std::string> comments(const RelationSpec& spec, const std::string& kind,
                                  const std::string& target,
                                  const std::set<std::string>& target_columns);
// "WITH (k = 'v', ...)" or "".
std::string with_clause(const std::vector<std::string>& reloptions);

struct DependentSpec {
    Dependent rel;
    std::string schema;
    std::string name;
    std::string definition;  // deparsed with every name qualified
    RelationSpec spec;
    bool populated = true;
    std::vector<std::string> index_definitions;  // pg_get_indexdef text (same names, same table)
    std::vector<std::optional<std::string>> index_comments;
    std::vector<std::string> index_names;
    std::optional<std::string> clustered_index;    // CLUSTER ON this index (by name)
    std::vector<std::string> trigger_definitions;  // pg_get_triggerdef text
    std::vector<std::string> rule_definitions;     // pg_get_ruledef text (not _RETURN)
};

// Every dependent of relid, in dependency order, with what it takes to recreate it. Only views and
// materialized views are captured; any other dependent (a table's rule) comes with `rel` only.
std::vector<DependentSpec> dependent_specs(pg::Spi& spi, Oid relid);

// The definition of a view or materialized view (its own query, not expanded) as it would read
// with each relation of `replacements` (first) replaced by its replacement (second): a swap
// builds the new relations of the dependents on the new view, and on one another, before it
// takes its lock. Every name is qualified. Only for queries named_beyond_relations refused.
std::string mapped_definition(Oid view, const std::vector<std::pair<Oid, Oid>>& replacements);

// The column names of a relation.
std::set<std::string> column_names(pg::Spi& spi, Oid relid);

}  // namespace mv::catalog
