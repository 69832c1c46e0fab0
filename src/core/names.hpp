// Names of views as users write them: parsing a (qualified) SQL identifier the way PostgreSQL
// parses '...'::regclass, and building deterministic identifiers (index and temporary names)
// that fit PostgreSQL's 63-byte limit. Pure C++, unit-tested.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mv {

// PostgreSQL's identifier limit (NAMEDATALEN - 1).
inline constexpr size_t kMaxIdentifierBytes = 63;

struct QualifiedName {
    std::optional<std::string> schema;  // absent for an unqualified name
    std::string name;
};

// Parses `name`, `schema.name`, `"Quoted Name"`, `schema."Odd ""name"""`. Unquoted parts follow
// SQL identifier syntax and are folded to lower case; quoted parts are taken as written.
// Throws Error with SQLSTATE 42602 for an empty name, unbalanced quotes, too many dots, a
// character an unquoted identifier cannot hold, or a part longer than 63 bytes.
QualifiedName parse_qualified_name(std::string_view text);

// The longest prefix of s that is at most max_bytes long and does not split a UTF-8 character.
std::string truncate_utf8(std::string_view s, size_t max_bytes);

// A 32-bit FNV-1a hash as 8 lower-case hex digits, for deterministic name suffixes.
std::string short_hash(std::string_view s);

// Deterministic name of the unique index matviews creates on view for columns:
// `<view>_<col>_..._key`, or, when that exceeds 63 bytes, a truncated prefix, an 8-digit hash of
// the full name and `_key`, so distinct inputs keep distinct names.
std::string unique_index_name(std::string_view view, const std::vector<std::string>& columns);

// A name derived from base that fits in 63 bytes: base + "_" + tag when that fits, otherwise a
// truncated base, a hash of base and the tag. Used for swap's temporary relations.
std::string derived_name(std::string_view base, std::string_view tag);

}  // namespace mv
