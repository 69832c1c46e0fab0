// The capture's conversion of a statement's transition rows to jsonb, in C, with no SQL and no
// cast: each column is its type's output text (what pg_dump writes, read back exactly by the
// type's input function), or the JSON itself for json and jsonb columns; NULL is JSON null. The
// keys are the column names, so rows logged by a partition (whose columns may sit in another
// order) read back as the partitioned table's. A type's output function is C code a superuser
// installed; a user-defined cast to json, which to_jsonb would call, is never looked up.
#pragma once

#include "boundary/spi.hpp"

namespace mv::pg {

// The rows of a trigger's transition tuplestore (old or new) as jsonb arrays of at most
// rows_per_chunk objects each; empty when there are none.
std::vector<Param> transition_rows(void* trigger_data, bool old_rows, int rows_per_chunk);

}  // namespace mv::pg
