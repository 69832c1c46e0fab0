// Incremental refresh, the operation side: the checks create, adopt, alter and refresh make
// (0A000 with the reason and the nearest strategy that works), the start of a view's capture,
// the refresh itself with its fallbacks, and matviews.explain.
#pragma once

#include "catalog/incremental.hpp"
#include "ops/common.hpp"

namespace mv::ops {

// The view's analysis; 0A000 unless it can be refreshed incrementally (its query, its key, a
// local source), with the first reason as detail and the nearest strategy as hint.
catalog::IncAnalysis require_incremental(Context& ctx, const catalog::RelationInfo& rel,
                                         const std::optional<catalog::Definition>& def);

// A definition becomes incremental (create, adopt, alter): the capture triggers go on its tables
// as the view's owner; its first refresh is a full one.
void start_incremental(Context& ctx, const catalog::RelationInfo& rel, int64_t definition_id,
                       const std::optional<catalog::Definition>& def);

// The refresh of an incremental view: the changes since its last refresh, the keys they affect,
// those rows recomputed and the difference applied; or a full refresh, with response.fallback.
void incremental_refresh(Context& ctx, const catalog::RelationInfo& rel,
                         const catalog::Definition& def);

}  // namespace mv::ops
