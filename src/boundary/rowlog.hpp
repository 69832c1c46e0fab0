// The capture's conversion of a statement's transition rows to jsonb, in C, with no SQL and no
// cast: each column is its type's output text (what pg_dump writes, read back exactly by the
// type's input function), or the JSON itself for a jsonb column; NULL is JSON null. The
// keys are the column names, so rows logged by a partition (whose columns may sit in another
// order) read back as the partitioned table's. A type's output function is C code a superuser
// installed; a user-defined cast to json, which to_jsonb would call, is never looked up.
#pragma once

#include "boundary/spi.hpp"

namespace mv::pg {

// The rows of a trigger's transition tuplestore (old or new) as jsonb arrays of at most
// rows_per_chunk objects each; empty when there are none.
std::vector<Param> transition_rows(void* trigger_data, bool old_rows, int rows_per_chunk);

// Whether the trigger's table has a column whose output text depends on a setting
// (extra_float_digits, DateStyle, IntervalStyle, bytea_output, lc_monetary): floats, dates and
// times, intervals, bytea, money, or arrays, composites, ranges and domains, which may hold them.
// Only then are those settings pinned for the conversion.
bool output_depends_on_settings(void* trigger_data);

}  // namespace mv::pg
