// Conversion between the C++ Json value and PostgreSQL's jsonb, built with PostgreSQL's own jsonb
// API (pushJsonbValue, JsonbIterator).
#pragma once

#include "boundary/guard.hpp"
#include "core/json.hpp"

namespace mv::pg {

// Builds a jsonb Datum, palloc'd in the current memory context.
Datum to_jsonb(const Json& j);
// Reads a jsonb value into C++.
Json from_jsonb(Jsonb* jb);

}  // namespace mv::pg
