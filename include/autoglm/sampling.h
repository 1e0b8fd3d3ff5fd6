// The public per-request sampling and stopping parameters (plain data), part of the installable
// API: GenerationRequest carries them. runtime/sampling_params.h validates them.
// Thread ownership: value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace autoglm {

// Accepted ranges (validate() rejects NaN, infinities and anything outside them, naming the
// parameter). temperature allows up to kMaxTemperature rather than OpenAI's 2: very flat
// distributions are legitimate for experiments; an OpenAI-compatible server may narrow it.
inline constexpr float kMaxTemperature = 100.0f;
inline constexpr float kMaxAbsLogitBias = 100.0f;
inline constexpr float kMaxAbsPresenceFrequency = 2.0f;
inline constexpr int32_t kMaxTopLogprobs = 20;

struct SamplingParams {
  float temperature = 1.0f;         // [0, 100]; 0 = greedy (argmax, lowest id on ties)
  int32_t top_k = 0;                // >= 1 keeps the k most likely; 0 or -1 = off
  float top_p = 1.0f;               // (0, 1]; 1 = off
  float min_p = 0.0f;               // [0, 1]; 0 = off
  float repetition_penalty = 1.0f;  // > 0 (HF semantics, prompt + output); 1 = off
  float presence_penalty = 0.0f;    // [-2, 2] (OpenAI semantics, output only)
  float frequency_penalty = 0.0f;   // [-2, 2] (OpenAI semantics, output only)
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id -> bias in [-100, 100]
  std::optional<uint64_t> seed;  // set: reproducible draws; unset: seeded from the OS
  bool logprobs = false;         // report the chosen token's logprob
  int32_t top_logprobs = 0;      // 0..20 alternatives per position (needs logprobs)
};

struct StopParams {
  int32_t max_tokens = 16;                // >= 1; reaching it finishes with "length"
  bool ignore_eos = false;                // do not stop at the model's EOS ids
  std::vector<int32_t> stop_token_ids;    // user stop ids, in addition to EOS
  std::vector<std::string> stop_strings;  // matched on detokenized text; not emitted
};

}  // namespace autoglm
