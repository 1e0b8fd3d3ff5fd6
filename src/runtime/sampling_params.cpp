// See sampling_params.h. Every message names the parameter as the CLI and the API spell it
// (snake_case), so the same error reads well from a flag or a JSON body.
#include "runtime/sampling_params.h"

#include <cmath>
#include <string>
#include <unordered_set>

#include "core/error.h"
#include "core/utf8.h"

namespace autoglm {
namespace {

void check(bool ok, const std::string& name, const std::string& requirement) {
  if (!ok) fail(ErrorCode::kInvalidArgument, name + " must be " + requirement);
}

bool finite_in(float value, float lo, float hi) {
  return std::isfinite(value) && value >= lo && value <= hi;
}

void check_token_id(int64_t id, int64_t vocab_size, const std::string& name) {
  check(id >= 0 && id < vocab_size, name,
        "a token id in [0, " + std::to_string(vocab_size) + "), got " + std::to_string(id));
}

}  // namespace

void validate(const SamplingParams& p, int64_t vocab_size) {
  check(finite_in(p.temperature, 0.0f, kMaxTemperature), "temperature",
        "a finite number in [0, 100]");
  check(p.top_k >= -1, "top_k", ">= 1, or 0 / -1 to disable it");
  check(std::isfinite(p.top_p) && p.top_p > 0.0f && p.top_p <= 1.0f, "top_p", "in (0, 1]");
  check(finite_in(p.min_p, 0.0f, 1.0f), "min_p", "in [0, 1]");
  check(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0.0f, "repetition_penalty",
        "a finite number > 0");
  check(finite_in(p.presence_penalty, -kMaxAbsPresenceFrequency, kMaxAbsPresenceFrequency),
        "presence_penalty", "in [-2, 2]");
  check(finite_in(p.frequency_penalty, -kMaxAbsPresenceFrequency, kMaxAbsPresenceFrequency),
        "frequency_penalty", "in [-2, 2]");
  std::unordered_set<int32_t> biased;
  for (const auto& [id, bias] : p.logit_bias) {
    check_token_id(id, vocab_size, "logit_bias key");
    check(biased.insert(id).second, "logit_bias key " + std::to_string(id), "given once");
    check(finite_in(bias, -kMaxAbsLogitBias, kMaxAbsLogitBias),
          "logit_bias[" + std::to_string(id) + "]", "in [-100, 100]");
  }
  check(p.top_logprobs >= 0 && p.top_logprobs <= kMaxTopLogprobs, "top_logprobs", "in [0, 20]");
  check(p.top_logprobs == 0 || p.logprobs, "top_logprobs", "0 unless logprobs is enabled");
}

void validate(const StopParams& p, int64_t vocab_size) {
  check(p.max_tokens >= 1, "max_tokens", ">= 1");
  for (const int32_t id : p.stop_token_ids) check_token_id(id, vocab_size, "stop_token_ids");
  for (const std::string& s : p.stop_strings) {
    check(!s.empty() && utf8::is_valid(s), "stop", "non-empty, valid UTF-8 strings");
  }
}

}  // namespace autoglm
