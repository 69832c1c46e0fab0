// Checks a view's SQL with PostgreSQL's own raw parser before anything is created: exactly one
// query (SELECT, WITH ... SELECT, VALUES, TABLE), no SELECT INTO, no data-modifying statement
// anywhere in it; and checks that a CREATE MATERIALIZED VIEW text built around it is still one
// statement of that kind.
#pragma once

#include "boundary/guard.hpp"

namespace mv::catalog {

// Returns the query's own text (without a trailing semicolon or surrounding white space).
// Throws 42601 for a syntax error, an empty text or several statements, 0A000 for a statement
// that is not a query, SELECT INTO, or a data-modifying WITH.
std::string check_single_query(const std::string& sql);

// check_single_query under both settings of standard_conforming_strings, for a query another
// server parses (a remote source) whose setting this one does not know; 22P06 when the two
// readings differ (a backslash in a '...' literal).
std::string check_single_query_any_quoting(const std::string& sql);

// Throws XX000 unless `statement` parses as exactly one CREATE MATERIALIZED VIEW.
void check_create_statement(const std::string& statement);

}  // namespace mv::catalog
