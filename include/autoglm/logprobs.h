// The public logprob types that stream deltas carry: the chosen token's log-probability and
// the most likely alternatives at one position (computed by runtime/logits_processing.h).
// Thread ownership: value types.
#pragma once

#include <cstdint>
#include <vector>

namespace autoglm {

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

// One position: the chosen token and the top alternatives (descending, lowest id first on ties).
struct Logprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;
};

}  // namespace autoglm
