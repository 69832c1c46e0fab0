// Applying an incremental refresh's difference to a materialized view at the table access method
// level. PostgreSQL refuses INSERT and DELETE on a materialized view from SQL; its own REFRESH
// CONCURRENTLY changes the heap and indexes directly, and so does this: it compares the view's
// current rows for the affected keys with the recomputed ones, deletes the rows that are gone
// (simple_table_tuple_delete) and inserts the new ones (table_tuple_insert, then
// ExecInsertIndexTuples, which also checks the unique key), all WAL-logged like any heap change,
// so a standby replays them. The caller holds ExclusiveLock on the view, as CONCURRENTLY does,
// and runs this as the view's owner in a security-restricted operation (index expressions and
// predicates are the owner's code).
#pragma once

#include "boundary/spi.hpp"

namespace mv::pg {

struct DeltaCounts {
    int64_t deleted = 0;   // rows gone whose key has no new row
    int64_t inserted = 0;  // new rows whose key had no row
    int64_t updated = 0;   // a row replaced by one with the same key
};

// current: the view's rows for the affected keys, ctid first, then the view's columns; fresh:
// the recomputed rows for the same keys, the view's columns. Rows equal in every column (as
// images, as CONCURRENTLY compares them) are left alone; duplicates pair up one to one.
// key_attnos: the view's key columns (1-based), to count replaced rows as updated.
DeltaCounts apply_view_delta(Oid view, const KeptRows& current, const KeptRows& fresh,
                             const std::vector<int>& key_attnos);

}  // namespace mv::pg
