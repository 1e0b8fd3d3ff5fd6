// The one validation of a ForwardBatch against a backend's pool and limits. The scheduler
// builds batches, so a malformed one is a bug there; but it must never make a backend read or
// write outside its KV pool or workspace, so every backend checks each step once, here.
// Thread ownership: a pure function; called by the thread driving the backend.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"

namespace autoglm {

struct BatchLimits {
  std::string backend;  // named in the error: "cpu backend", "cuda backend"
  int64_t vocab_size = 0;
  KvPoolShape pool;
  int32_t max_tokens = 0;          // 0: unbounded
  int32_t max_seqs = 0;            // 0: unbounded
  int32_t max_blocks_per_seq = 0;  // 0: unbounded
  int64_t max_context = 0;         // 0: unbounded
  int32_t max_logits_rows = 0;     // 0: unbounded
  // Each sequence's j-th of L new tokens sits exactly at context_len - L + j (backends that
  // derive key positions from context_len need it); otherwise only 0 <= position < context_len.
  bool exact_positions = false;
  // Token ids may also be previous_sample_token(r) for r below this (backend.h).
  int32_t previous_sample_rows = 0;
};

// Throws Error(kInternal) naming the backend and what is malformed.
void check_forward_batch(const ForwardBatch& batch, const BatchLimits& limits);

}  // namespace autoglm
