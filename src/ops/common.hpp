// Helpers the operations share: argument checks, name resolution that keeps the response's view
// name up to date, and the unique index they manage.
#pragma once

#include "ops/ops.hpp"
#include "ops/runner.hpp"

namespace mv::ops {

// The name argument, parsed; 22004 when null, 42602 when malformed.
QualifiedName require_name(const OptText& name);
// The same, and names the view in the response as parsed (quoted parts, schema if given), so
// that errors before resolution show the normalized name, not the raw argument.
QualifiedName require_name(Context& ctx, const OptText& name);

// The text shown for a name argument in runs before it is resolved.
std::string raw_name(const OptText& name);

// The quoted form of a parsed name: schema.name, or name alone when unqualified.
std::string display_name(const QualifiedName& q);

// Resolves q to a materialized view (42P01, 42809 as catalog::require_matview); names the view
// in the response by its resolved, quoted name as soon as a relation is found.
catalog::RelationInfo require_matview(Context& ctx, const QualifiedName& q);

// 42501 unless the current role has the privileges of the definition's owner (for a definition
// whose view is missing; require_owner checks the view itself when it exists).
void require_definition_owner(const catalog::Definition& def, const std::string& view);

// Creates the unique index matviews manages for columns on rel, under its deterministic name,
// and returns that name. An index of that name that is already this view's unique index on
// those columns is kept; any other relation of that name is an error (42P07), never reused.
std::string create_unique_index(Context& ctx, const catalog::RelationInfo& rel,
                                const std::vector<std::string>& columns);

// Drops the index matviews manages for columns on rel, if an index of that name exists on rel
// (never a relation of that name that belongs to something else); returns whether it did.
bool drop_unique_index(Context& ctx, const catalog::RelationInfo& rel,
                       const std::vector<std::string>& columns);

// The exact CREATE UNIQUE INDEX a user can run to allow CONCURRENTLY on rel.
std::string unique_index_hint(const catalog::RelationInfo& rel, const OptTextList& columns);

// Adds response.warning when no matviews worker runs to carry out background work (SPEC §1).
void warn_if_no_worker(Context& ctx);

// The search_path a view owner's query runs under: the one the view was defined with, else
// (nullopt) the caller's, as a plain REFRESH would use.
std::optional<std::string> owner_search_path(const std::optional<catalog::Definition>& def);

// 22023 unless columns is a non-empty list of non-empty names.
void check_index_columns(const std::vector<std::string>& columns);

}  // namespace mv::ops
