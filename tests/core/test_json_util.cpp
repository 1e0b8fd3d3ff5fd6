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

}  // namespace
}  // namespace autoglm
