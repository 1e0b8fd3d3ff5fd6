// Validation of the per-request sampling, logprob and stopping parameters (the types live in
// include/autoglm/sampling.h), so the CLI, the engine runtime and the server get the same errors.
// Thread ownership: value types; validate() is a pure function.
#pragma once

#include <cstdint>

#include "autoglm/sampling.h"  // SamplingParams, StopParams and their limits (public types)

namespace autoglm {

// Throws Error(kInvalidArgument) naming the offending parameter. `vocab_size` bounds
// logit_bias ids.
void validate(const SamplingParams& params, int64_t vocab_size);
void validate(const StopParams& params, int64_t vocab_size);

}  // namespace autoglm
