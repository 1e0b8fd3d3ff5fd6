// Plain data for selecting one token per logits row inside the backend, so that a GPU backend
// returns only the chosen ids (and requested logprobs) instead of whole logits rows. The engine
// prepares one RowSamplingParams per row from the request's sampling parameters, its token
// history and its seeded generator; the backend fills one RowSample per row. row_sampler.h is
// the reference (CPU) definition every backend must reproduce.
// Thread ownership: value types.
#pragma once

#include <cstdint>
#include <span>

namespace autoglm {

inline constexpr int32_t kMaxRowTopLogprobs = 20;

// One token whose logit the request adjusts before selection: logit_bias, then (if `seen`, the
// token is in the prompt or the output) the repetition penalty, then (if generated > 0) the
// frequency and presence penalties. Each token appears at most once per row.
struct LogitAdjustment {
  int32_t token = 0;
  float bias = 0.0f;
  int32_t generated = 0;  // occurrences in the output so far
  int32_t seen = 0;       // 1: in the prompt or the output (repetition penalty applies)
};

struct RowSamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 0;         // <= 0 or >= vocab: off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t top_logprobs = -1;  // -1: no logprobs; 0..kMaxRowTopLogprobs alternatives
  int32_t adjust_begin = 0;   // this row's adjustments: [adjust_begin, adjust_end)
  int32_t adjust_end = 0;
  double uniform = 0.0;  // the draw's variate in [0, 1), from the request's generator
};

enum RowSampleFlags : int32_t {
  kRowNonFiniteLogits = 1,  // a NaN or +-inf logit was seen (the model output is broken)
};

struct RowSample {
  int32_t token = -1;
  int32_t flags = 0;
  float logprob = 0.0f;  // of `token`, when top_logprobs >= 0
  int32_t n_top = 0;
  int32_t top_ids[kMaxRowTopLogprobs] = {};
  float top_logprobs[kMaxRowTopLogprobs] = {};
};

// What the engine hands to Backend::forward_sample: one params entry per logits row.
struct SampleBatch {
  std::span<const RowSamplingParams> rows;
  std::span<const LogitAdjustment> adjustments;
};

}  // namespace autoglm
