// Unit tests of name parsing and deterministic identifiers (core/names).
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/names.hpp"

using mv::Error;
using mv::parse_qualified_name;

namespace {

std::string sqlstate_of(const std::string& text) {
    try {
        parse_qualified_name(text);
    } catch (const Error& e) {
        return e.sqlstate();
    }
    return "ok";
}

}  // namespace

TEST(Names, Unqualified) {
    auto q = parse_qualified_name("mv_users");
    EXPECT_FALSE(q.schema.has_value());
    EXPECT_EQ(q.name, "mv_users");
}

TEST(Names, QualifiedAndFolded) {
    auto q = parse_qualified_name("Reporting.MV_Users");
    ASSERT_TRUE(q.schema.has_value());
    EXPECT_EQ(*q.schema, "reporting");
    EXPECT_EQ(q.name, "mv_users");
}

TEST(Names, QuotedKeepsCaseAndEscapes) {
    auto q = parse_qualified_name("reporting.\"Odd \"\"name\"\"\"");
    EXPECT_EQ(*q.schema, "reporting");
    EXPECT_EQ(q.name, "Odd \"name\"");
    EXPECT_EQ(parse_qualified_name("\"Mixed Case\"").name, "Mixed Case");
    EXPECT_EQ(parse_qualified_name("\"a.b\"").name, "a.b");
}

TEST(Names, WhitespaceAroundParts) {
    auto q = parse_qualified_name("  public . mv  ");
    EXPECT_EQ(*q.schema, "public");
    EXPECT_EQ(q.name, "mv");
}

TEST(Names, DollarAndDigitsInside) {
    EXPECT_EQ(parse_qualified_name("a$1_2").name, "a$1_2");
    EXPECT_EQ(parse_qualified_name("_x").name, "_x");
}

TEST(Names, NonAsciiUnquoted) {
    EXPECT_EQ(parse_qualified_name("vue_évé").name, "vue_évé");
}

TEST(Names, InvalidFormsGive42602) {
    for (const char* bad : {"", "   ", "\"", "\"abc", "abc\"", "a.b.c", "a..b", ".a", "a.", "\"\"",
                            "1abc", "a-b", "a b", "a;drop table x", "a\"b\"", "public.\"x"}) {
        EXPECT_EQ(sqlstate_of(bad), "42602") << "input: [" << bad << "]";
    }
}

TEST(Names, LengthLimit) {
    std::string ok(63, 'a');
    EXPECT_EQ(parse_qualified_name(ok).name, ok);
    EXPECT_EQ(sqlstate_of(std::string(64, 'a')), "42602");
    EXPECT_EQ(sqlstate_of("\"" + std::string(64, 'A') + "\""), "42602");
    EXPECT_EQ(sqlstate_of("s." + std::string(64, 'a')), "42602");
}

TEST(Names, ErrorsCarryDetailAndHint) {
    try {
        parse_qualified_name("a.b.c");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(e.info().detail.find("Too many dots"), std::string::npos);
        EXPECT_FALSE(e.info().hint.empty());
    }
}

TEST(Identifiers, TruncateUtf8NeverSplitsCharacters) {
    std::string s = "ab\xc3\xa9";  // "abé", 4 bytes
    EXPECT_EQ(mv::truncate_utf8(s, 3), "ab");
    EXPECT_EQ(mv::truncate_utf8(s, 4), s);
    EXPECT_EQ(mv::truncate_utf8(s, 10), s);
}

TEST(Identifiers, UniqueIndexNameShort) {
    EXPECT_EQ(mv::unique_index_name("mv_users", {"id"}), "mv_users_id_key");
    EXPECT_EQ(mv::unique_index_name("mv", {"a", "b"}), "mv_a_b_key");
}

TEST(Identifiers, UniqueIndexNameLongIsDeterministicAndFits) {
    std::string view(63, 'v');
    auto a = mv::unique_index_name(view, {"user_id"});
    auto b = mv::unique_index_name(view, {"user_id"});
    auto c = mv::unique_index_name(view, {"other_id"});
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    EXPECT_LE(a.size(), 63u);
    EXPECT_LE(c.size(), 63u);
    EXPECT_EQ(a.substr(a.size() - 4), "_key");
}

TEST(Identifiers, DerivedNameFitsForMultibyteNames) {
    std::string view;
    for (int i = 0; i < 31; i++) view += "\xc3\xa9";  // 62 bytes of "é"
    auto n = mv::derived_name(view, "mvswap");
    EXPECT_LE(n.size(), 63u);
    // The prefix before "_<8 hex>_mvswap" holds whole two-byte characters only.
    std::string prefix = n.substr(0, n.size() - 16);
    EXPECT_EQ(prefix.size() % 2, 0u);
    EXPECT_EQ(n.substr(n.size() - 16, 1), "_");
    EXPECT_EQ(n.substr(n.size() - 7), "_mvswap");
}
