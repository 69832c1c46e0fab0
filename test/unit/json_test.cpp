// Unit tests of the C++ JSON value (core/json) used for requests and responses.
#include <gtest/gtest.h>

#include "core/json.hpp"

using mv::Json;

TEST(Json, BuildsObjectsInInsertionOrder) {
    Json j = Json::object();
    j.set("status", "created").set("run_id", 12).set("ok", true).set("none", nullptr);
    EXPECT_EQ(j.dump(), R"({"status":"created","run_id":12,"ok":true,"none":null})");
}

TEST(Json, SetReplacesExistingKey) {
    Json j = Json::object();
    j.set("a", 1).set("a", 2);
    EXPECT_EQ(j.size(), 1u);
    EXPECT_EQ(j.find("a")->as_int(), 2);
}

TEST(Json, EscapesStrings) {
    Json j("a\"b\\c\n\x01");
    EXPECT_EQ(j.dump(), R"("a\"b\\c\n\u0001")");
}

TEST(Json, Arrays) {
    Json a = Json::string_array({"x", "y"});
    EXPECT_EQ(a.dump(), R"(["x","y"])");
    a.push(3.5);
    EXPECT_EQ(a.size(), 3u);
    EXPECT_DOUBLE_EQ(a.as_array()[2].as_double(), 3.5);
}

TEST(Json, NonFiniteDoublesBecomeNull) {
    EXPECT_EQ(Json(1.0 / 0.0).dump(), "null");
}

TEST(Json, EraseAndFind) {
    Json j = Json::object();
    j.set("a", 1);
    EXPECT_TRUE(j.contains("a"));
    EXPECT_TRUE(j.erase("a"));
    EXPECT_FALSE(j.erase("a"));
    EXPECT_EQ(j.find("a"), nullptr);
    EXPECT_EQ(Json(5).find("a"), nullptr);
}

TEST(Json, Equality) {
    Json a = Json::object();
    a.set("k", Json::string_array({"v"}));
    Json b = Json::object();
    b.set("k", Json::string_array({"v"}));
    EXPECT_EQ(a, b);
    b.set("k", 1);
    EXPECT_NE(a, b);
}
