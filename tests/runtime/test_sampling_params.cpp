// Parameter validation: every bad value is rejected with an error that names the parameter.
// Thread ownership: test thread only.
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>

#include "core/error.h"
#include "runtime/sampling_params.h"

namespace autoglm {
namespace {

constexpr int64_t kVocab = 100;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

void expect_rejected(const std::function<void(SamplingParams&)>& change, const std::string& name) {
  SamplingParams p;
  change(p);
  try {
    validate(p, kVocab);
    ADD_FAILURE() << "accepted a bad " << name;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

TEST(SamplingParams, DefaultsAndBoundariesAreAccepted) {
  SamplingParams p;
  EXPECT_NO_THROW(validate(p, kVocab));
  p.temperature = 0.0f;
  p.top_k = -1;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  p.repetition_penalty = 0.01f;
  p.logit_bias = {{0, -100.0f}, {99, 100.0f}};
  p.logprobs = true;
  p.top_logprobs = 20;
  EXPECT_NO_THROW(validate(p, kVocab));
  p.temperature = kMaxTemperature;
  EXPECT_NO_THROW(validate(p, kVocab));
}

TEST(SamplingParams, BadValuesNameTheParameter) {
  expect_rejected([](auto& p) { p.temperature = kNaN; }, "temperature");
  expect_rejected([](auto& p) { p.temperature = -0.1f; }, "temperature");
  expect_rejected([](auto& p) { p.temperature = 100.5f; }, "temperature");
  expect_rejected([](auto& p) { p.top_k = -2; }, "top_k");
  expect_rejected([](auto& p) { p.top_p = 0.0f; }, "top_p");
  expect_rejected([](auto& p) { p.top_p = 1.01f; }, "top_p");
  expect_rejected([](auto& p) { p.top_p = kNaN; }, "top_p");
  expect_rejected([](auto& p) { p.min_p = -0.01f; }, "min_p");
  expect_rejected([](auto& p) { p.min_p = kInf; }, "min_p");
  expect_rejected([](auto& p) { p.repetition_penalty = 0.0f; }, "repetition_penalty");
  expect_rejected([](auto& p) { p.repetition_penalty = kInf; }, "repetition_penalty");
  expect_rejected([](auto& p) { p.presence_penalty = 2.5f; }, "presence_penalty");
  expect_rejected([](auto& p) { p.presence_penalty = kNaN; }, "presence_penalty");
  expect_rejected([](auto& p) { p.frequency_penalty = -2.01f; }, "frequency_penalty");
  expect_rejected([](auto& p) { p.logit_bias = {{100, 1.0f}}; }, "logit_bias");
  expect_rejected([](auto& p) { p.logit_bias = {{-1, 1.0f}}; }, "logit_bias");
  expect_rejected([](auto& p) { p.logit_bias = {{5, 100.5f}}; }, "logit_bias[5]");
  expect_rejected([](auto& p) { p.logit_bias = {{5, kNaN}}; }, "logit_bias[5]");
  expect_rejected([](auto& p) { p.logit_bias = {{5, 1.0f}, {5, 2.0f}}; }, "logit_bias key 5");
  expect_rejected([](auto& p) { p.logprobs = true, p.top_logprobs = 21; }, "top_logprobs");
  expect_rejected([](auto& p) { p.top_logprobs = 2; }, "top_logprobs");  // needs logprobs
}

TEST(StopParams, BadValuesNameTheParameter) {
  const auto rejected = [](const std::function<void(StopParams&)>& change,
                           const std::string& name) {
    StopParams p;
    change(p);
    try {
      validate(p, kVocab);
      ADD_FAILURE() << "accepted a bad " << name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  rejected([](auto& p) { p.max_tokens = 0; }, "max_tokens");
  rejected([](auto& p) { p.stop_token_ids = {100}; }, "stop_token_ids");
  rejected([](auto& p) { p.stop_strings = {""}; }, "stop");
  rejected([](auto& p) { p.stop_strings = {"ok", "\xff"}; }, "stop");
  StopParams good;
  good.stop_token_ids = {0, 99};
  good.stop_strings = {"\n\n", "</s>"};
  EXPECT_NO_THROW(validate(good, kVocab));
}

}  // namespace
}  // namespace autoglm
