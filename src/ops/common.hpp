// Helpers the operations share: argument checks and the unique index they manage.
#pragma once

#include "ops/ops.hpp"
#include "ops/runner.hpp"

namespace mv::ops {

// The name argument, parsed; 22004 when null, 42602 when malformed.
QualifiedName require_name(const OptText& name);

// The text shown for a name argument in runs before it is resolved.
std::string raw_name(const OptText& name);

// CREATE UNIQUE INDEX IF NOT EXISTS <deterministic name> ON view (columns); returns the name.
std::string create_unique_index(Context& ctx, const catalog::RelationInfo& rel,
                                const std::vector<std::string>& columns);

// The exact CREATE UNIQUE INDEX a user can run to allow CONCURRENTLY on rel.
std::string unique_index_hint(const catalog::RelationInfo& rel, const OptTextList& columns);

// 22023 unless columns is a non-empty list of non-empty names.
void check_index_columns(const std::vector<std::string>& columns);

}  // namespace mv::ops
