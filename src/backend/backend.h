// The one seam between the scheduler and a compute backend (CPU now, CUDA later): a ragged,
// structure-of-arrays batch of prefill chunks and decode tokens, with a block table per
// sequence into the backend's paged KV pool. Plain data only: no requests, no JSON, no HTTP.
// Thread ownership: a Backend is driven by exactly one thread (the engine thread); the spans in
// a ForwardBatch stay valid for the duration of the forward() call only.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
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

// Overlapped scheduling queues step N + 1 before step N's samples reach the host, so a token id
// of a batch given to submit_sample() may name a sample of the step submitted just before it:
// previous_sample_token(r) stands for that step's choice in logits row r. Any other id must be
// a vocabulary id.
constexpr int32_t previous_sample_token(int32_t row) {
  return -1 - row;
}
inline constexpr size_t kMaxStepsInFlight = 2;  // submitted and not yet collected

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
  // forward_sample in two halves, so that the host can prepare the next step while the device
  // runs this one: submit_sample() queues the step and returns; collect_sample() waits for the
  // oldest queued step and copies out its samples. At most kMaxStepsInFlight steps are queued;
  // the batch's token ids may use previous_sample_token(). forward() and forward_sample() must
  // not be called while steps are queued. The default runs forward_sample() inside submit.
  virtual void submit_sample(const ForwardBatch& batch, const SampleBatch& sampling);
  virtual void collect_sample(std::span<RowSample> out);
  // How long the device sat idle between the last collected step and the one before it
  // (seconds), where the backend can time its device; else nullopt.
  virtual std::optional<double> last_idle_gap() const { return std::nullopt; }
  virtual KvPoolShape kv_pool() const = 0;
  virtual int32_t vocab_size() const = 0;

 private:
  std::vector<float> host_logits_;  // forward_sample's default: the step's logits rows
  // submit_sample's default: the queued steps' samples, and the latest step's chosen tokens.
  std::deque<std::vector<RowSample>> queued_;
  std::vector<int32_t> previous_tokens_;
  std::vector<int32_t> resolved_ids_;
};

// The token ids of `batch` with every previous_sample_token() replaced from `previous` (the
// chosen tokens of the step submitted before it): throws kInternal for a row it does not have.
// A row whose sample is not a vocabulary id (a non-finite row) reads as token 0: its request
// ends, and the step only needs a valid id to run.
void resolve_previous_samples(std::span<const int32_t> ids, std::span<const int32_t> previous,
                              int32_t vocab_size, std::vector<int32_t>& resolved);

}  // namespace autoglm
