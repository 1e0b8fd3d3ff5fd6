// The requests of a `autoglm bench serve` run: the "random" dataset (prompts of a chosen token
// length, as vLLM's random dataset) and the arrival schedule (Poisson at a rate, or all at
// once). Everything is a pure function of the seed, so runs are reproducible.
// Thread ownership: built on the main thread before the run starts.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace autoglm::bench {

struct RandomDatasetOptions {
  int32_t num_prompts = 1000;
  int32_t input_len = 1024;
  int32_t output_len = 128;
  double range_ratio = 0.0;  // lengths uniform in [len * (1 - r), len * (1 + r)]
  uint32_t seed = 0;
  // Token ids are drawn from [0, vocab_size) when no tokenizer is given.
  int32_t vocab_size = 0;
};

struct BenchPrompt {
  // Exactly one is used: token ids (sent as `prompt: [ids]`) or text.
  std::vector<int32_t> token_ids;
  std::string text;
  int32_t input_tokens = 0;   // the prompt's length in tokens, as the workload measured it
  int32_t output_tokens = 0;  // max_tokens for this request
};

// Inclusive bounds of a length drawn with `range_ratio`; never below 1.
struct LengthRange {
  int32_t low = 1;
  int32_t high = 1;
};
LengthRange length_range(int32_t len, double range_ratio);

// Token-id prompts: ids uniform in [0, vocab_size), lengths as the options say.
std::vector<BenchPrompt> random_token_prompts(const RandomDatasetOptions& options);

// Text prompts from `tokenizer`: random ids are decoded to text. The ids are drawn from the
// tokenizer's whole-word tokens (" word") that round-trip alone, so the text re-encodes to
// exactly the drawn length; with too few of those, from every non-special id, and the text
// is re-encoded and trimmed or extended for a few rounds (the length reached is recorded).
std::vector<BenchPrompt> random_text_prompts(const RandomDatasetOptions& options,
                                             const Tokenizer& tokenizer);

// When each request is sent, in seconds from the start. `request_rate` <= 0 or infinite
// sends everything at time 0; otherwise gaps are drawn from a gamma distribution with shape
// `burstiness` and mean 1 / request_rate (burstiness 1 is a Poisson process).
std::vector<double> arrival_schedule(int32_t count, double request_rate, double burstiness,
                                     uint32_t seed);

}  // namespace autoglm::bench
