#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/json_util.h"

namespace autoglm {
namespace {

TEST(JsonUtil, ParsesAndKeepsKeyOrder) {
  Json j = parse_json_limited(R"({"b":1,"a":[1,2]})", "t.json");
  EXPECT_EQ(j.dump(), R"({"b":1,"a":[1,2]})");
}

TEST(JsonUtil, RejectsDeepNestingWithoutStackOverflow) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  try {
    parse_json_limited(deep, "deep.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("deep.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("nested deeper"), std::string::npos);
  }
}

TEST(JsonUtil, RejectsMalformedAndInvalidUtf8) {
  EXPECT_THROW(parse_json_limited("{\"a\":1} trailing", "x.json"), Error);
  EXPECT_THROW(parse_json_limited("{\"a\":\"\xff\"}", "x.json"), Error);
  EXPECT_THROW(parse_json_limited(R"({"a":"\ud800"})", "x.json"), Error);
}

TEST(JsonUtil, RejectsDuplicateKeysAtAnyDepth) {
  EXPECT_THROW(parse_json_limited(R"({"a":1,"a":2})", "d.json"), Error);
  EXPECT_THROW(parse_json_limited(R"({"x":[{"b":1,"b":1}]})", "d.json"), Error);
  EXPECT_NO_THROW(parse_json_limited(R"({"x":{"b":1},"y":{"b":1}})", "d.json"));
}

TEST(JsonUtil, BuildsLargeObjectsInOrder) {
  std::string text = "{";
  for (int i = 0; i < 20000; ++i)
    text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  text += "}";
  Json j = parse_json_limited(text, "big.json");
  ASSERT_EQ(j.size(), 20000u);
  EXPECT_EQ(j.begin().key(), "k0");
  EXPECT_EQ(j["k19999"], 19999);
}

}  // namespace
}  // namespace autoglm
