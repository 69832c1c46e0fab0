// Carrying planner statistics, and queries, from a relation to its replacement. A plain REFRESH
// keeps the view's pg_statistic rows (the relation stays, only its heap is replaced), so the
// planner keeps planning with them until the next ANALYZE; a swap builds a new relation, which has
// none. Rather than ANALYZE the new relation (a 30,000-row sample read and sorted per column, the
// larger part of a swap's extra time on small views), the swap gives it the old relation's rows,
// column by column, as REFRESH would have kept them. Only columns equal in name, type, typmod and
// collation get them: a value array of another type must never reach the planner.
#pragma once

#include "boundary/guard.hpp"

namespace mv::pg {

struct CopiedStatistics {
    int columns = 0;  // columns of `to`
    int copied = 0;   // of them, given the statistics of the same column of `from`
};

// Inserts into pg_statistic, for each column of `to` that has a matching column of `from` with
// statistics (not inherited ones: neither is partitioned), a copy of that row. `to` must have
// none yet (it was created in this transaction and never analyzed) and be locked by the caller.
CopiedStatistics copy_statistics(Oid from, Oid to);

// Whether each column of `from` is, at the same position, a column of `to` with the same name,
// type, typmod and collation (`to` may have more, after them): a query that reads `from` reads
// the same columns of `to` when its relation is replaced by OID.
bool columns_unchanged(Oid from, Oid to);

// The names of a relation's columns, in order (dropped ones left out).
std::vector<std::string> attribute_names(Oid relid);

}  // namespace mv::pg
