// The one seam between the scheduler and a compute backend (CPU now, CUDA later): a ragged,
// structure-of-arrays batch of prefill chunks and decode tokens, with a block table per
// sequence into the backend's paged KV pool. Plain data only: no requests, no JSON, no HTTP.
// Thread ownership: a Backend is driven by exactly one thread (the engine thread); the spans in
// a ForwardBatch stay valid for the duration of the forward() call only.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/row_sampling.h"

namespace autoglm {

struct ForwardBatch {
  std::span<const int32_t> token_ids;    // [n_tokens] prefill chunks and decode tokens, by seq
  std::span<const int32_t> positions;    // [n_tokens] absolute position of each token
  std::span<const int32_t> seq_start;    // [n_seqs + 1] token offsets of each sequence
  std::span<const int32_t> context_len;  // [n_seqs] tokens in the KV after this step
  std::span<const int32_t> block_table;  // [n_seqs * max_blocks_per_seq] KV block ids
  int32_t max_blocks_per_seq = 0;
  std::span<const int32_t> slot_mapping;  // [n_tokens] KV slot (block * block_size + offset)
  std::span<const int32_t> logits_rows;   // [n_out] token indices whose logits are returned

  int32_t n_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t n_seqs() const { return static_cast<int32_t>(context_len.size()); }
};

// Owning storage behind a ForwardBatch: whoever builds a step (the scheduler, tests) fills
// these vectors and hands view() to Backend::forward.
struct ForwardBatchArrays {
  std::vector<int32_t> token_ids, positions, seq_start, context_len, block_table, slot_mapping;
  std::vector<int32_t> logits_rows;
  int32_t max_blocks_per_seq = 0;

  ForwardBatch view() const {
    ForwardBatch b;
    b.token_ids = token_ids;
    b.positions = positions;
    b.seq_start = seq_start;
    b.context_len = context_len;
    b.block_table = block_table;
    b.max_blocks_per_seq = max_blocks_per_seq;
    b.slot_mapping = slot_mapping;
    b.logits_rows = logits_rows;
    return b;
  }
};

struct KvPoolShape {
  int32_t num_blocks = 0;
  int32_t block_size = 16;  // tokens per block
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Runs one engine step. Writes logits [logits_rows.size(), vocab] (fp32) into `logits`.
  virtual void forward(const ForwardBatch& batch, std::span<float> logits) = 0;
  // Runs one engine step and selects one token per logits row (row_sampler.h defines how):
  // out[r] for sampling.rows[r]. The default runs forward() into host memory and samples
  // there; a GPU backend overrides it so that only the RowSamples leave the device.
  virtual void forward_sample(const ForwardBatch& batch, const SampleBatch& sampling,
                              std::span<RowSample> out);
  virtual KvPoolShape kv_pool() const = 0;
  virtual int32_t vocab_size() const = 0;

 private:
  std::vector<float> host_logits_;  // forward_sample's default: the step's logits rows
};

}  // namespace autoglm
