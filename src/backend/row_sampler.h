// The reference definition of token selection over one logits row (row_sampling.h): logit
// adjustments, greedy or temperature sampling truncated by top-k, then top-p on the top-k
// renormalised distribution, then min-p (relative to the top token), and one draw with the
// row's uniform variate. The draw walks the kept tokens in token-id order (any fixed order
// gives the same distribution; id order is the one a GPU reproduces without sorting).
// Logprobs are the log-softmax of the adjusted logits, before temperature and truncation.
// Backends run this on the host, or reproduce it on the device (cuda/sampling.cu).
// Thread ownership: pure functions, any thread.
#pragma once

#include <span>

#include "autoglm/logprobs.h"
#include "backend/row_sampling.h"

namespace autoglm {

// Applies `adjustments` to `logits` in place with the row's penalties.
void apply_logit_adjustments(const RowSamplingParams& params,
                             std::span<const LogitAdjustment> adjustments, std::span<float> logits);

// Adjusts `logits` in place, then selects the token (and logprobs when asked).
RowSample sample_row(std::span<float> logits, const RowSamplingParams& params,
                     std::span<const LogitAdjustment> adjustments);

// log-softmax of `logits` at `chosen`, and the `top_n` most likely tokens (descending, lowest
// id first on ties). Computed in double for accuracy over large vocabularies.
Logprobs compute_logprobs(std::span<const float> logits, int32_t chosen, int32_t top_n);

}  // namespace autoglm
