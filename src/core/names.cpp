// Parsing of qualified SQL identifiers and generation of deterministic identifiers.
#include "core/names.hpp"

#include <cstdint>
#include <cstdio>

#include "core/error.hpp"

namespace mv {

namespace {

constexpr const char* kNameHint =
    "Write the name as a SQL identifier: mv_users, reporting.mv_users, or with double quotes "
    "for other characters, e.g. \"Mixed Case\" or reporting.\"odd name\".";

[[noreturn]] void invalid(std::string_view text, const std::string& why) {
    // Throws the 42602 error for text.
    throw Error(sqlstate::invalid_name, "invalid name \"" + std::string(text) + "\"")
        .detail(why)
        .hint(kNameHint);
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool ident_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

bool ident_cont(unsigned char c) {
    return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

}  // namespace

QualifiedName parse_qualified_name(std::string_view text) {
    // Scans parts separated by dots, each quoted or unquoted, with optional white space around.
    std::vector<std::string> parts;
    size_t i = 0;
    const size_t n = text.size();
    if (n == 0) invalid(text, "The name is empty.");
    for (;;) {
        while (i < n && is_space(text[i])) i++;
        if (i >= n)
            invalid(text, parts.empty() ? "The name is empty." : "The name ends with a dot.");
        std::string part;
        if (text[i] == '"') {
            i++;
            bool closed = false;
            while (i < n) {
                if (text[i] == '"') {
                    if (i + 1 < n && text[i + 1] == '"') {
                        part.push_back('"');
                        i += 2;
                        continue;
                    }
                    closed = true;
                    i++;
                    break;
                }
                part.push_back(text[i++]);
            }
            if (!closed) invalid(text, "A quoted identifier is not closed.");
            if (part.empty()) invalid(text, "A quoted identifier is empty (\"\").");
        } else {
            unsigned char c = static_cast<unsigned char>(text[i]);
            if (c == '.') invalid(text, "A part of the name is empty.");
            if (!ident_start(c))
                invalid(text,
                        std::string("An unquoted identifier cannot start with '") + text[i] + "'.");
            while (i < n && ident_cont(static_cast<unsigned char>(text[i]))) {
                char ch = text[i++];
                if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
                part.push_back(ch);
            }
        }
        if (part.size() > kMaxIdentifierBytes)
            invalid(text, "\"" + part +
                              "\" is longer than 63 bytes, the limit of PostgreSQL identifiers.");
        parts.push_back(std::move(part));
        while (i < n && is_space(text[i])) i++;
        if (i >= n) break;
        if (text[i] != '.') {
            if (text[i] == '"') invalid(text, "A quote appears inside an identifier.");
            invalid(text, std::string("Unexpected character '") + text[i] + "'.");
        }
        i++;
        if (parts.size() >= 2) invalid(text, "Too many dots: use name or schema.name.");
    }
    QualifiedName q;
    if (parts.size() == 2) {
        q.schema = std::move(parts[0]);
        q.name = std::move(parts[1]);
    } else {
        q.name = std::move(parts[0]);
    }
    return q;
}

std::string truncate_utf8(std::string_view s, size_t max_bytes) {
    // Cuts at max_bytes, then backs off continuation bytes so no character is split.
    if (s.size() <= max_bytes) return std::string(s);
    size_t end = max_bytes;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) end--;
    return std::string(s.substr(0, end));
}

std::string short_hash(std::string_view s) {
    // FNV-1a, 32 bits.
    uint32_t h = 2166136261u;
    for (unsigned char c : s) {
        h ^= c;
        h *= 16777619u;
    }
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", h);
    return buf;
}

std::string derived_name(std::string_view base, std::string_view tag) {
    // base_tag, or prefix_hash_tag when too long.
    std::string full = std::string(base) + "_" + std::string(tag);
    if (full.size() <= kMaxIdentifierBytes) return full;
    std::string suffix = "_" + short_hash(full) + "_" + std::string(tag);
    return truncate_utf8(base, kMaxIdentifierBytes - suffix.size()) + suffix;
}

std::string unique_index_name(std::string_view view, const std::vector<std::string>& columns) {
    // <view>_<cols>_key, shortened deterministically when needed.
    std::string base(view);
    for (const auto& c : columns) base += "_" + c;
    return derived_name(base, "key");
}

}  // namespace mv
