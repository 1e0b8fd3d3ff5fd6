// See batch_check.h.
#include "backend/batch_check.h"

#include "core/error.h"

namespace autoglm {
namespace {

void check_sizes(const ForwardBatch& b, const BatchLimits& l, const auto& bad) {
  const int32_t n = b.n_tokens();
  if ((l.max_tokens > 0 && n > l.max_tokens) || (l.max_seqs > 0 && b.n_seqs() > l.max_seqs)) {
    bad(std::to_string(n) + " tokens / " + std::to_string(b.n_seqs()) +
        " sequences exceed the step limits");
  }
  if (b.max_blocks_per_seq < 0 ||
      (l.max_blocks_per_seq > 0 && b.max_blocks_per_seq > l.max_blocks_per_seq)) {
    bad("max_blocks_per_seq beyond max_context_len / block_size");
  }
  if (l.max_logits_rows > 0 && static_cast<int64_t>(b.logits_rows.size()) > l.max_logits_rows) {
    bad("too many logits rows");
  }
  if (b.positions.size() != static_cast<size_t>(n) ||
      b.slot_mapping.size() != static_cast<size_t>(n)) {
    bad("positions/slot_mapping length");
  }
  if (b.seq_start.size() != b.context_len.size() + 1 || b.seq_start.front() != 0 ||
      b.seq_start.back() != n) {
    bad("seq_start");
  }
  if (b.block_table.size() != static_cast<size_t>(b.n_seqs()) * b.max_blocks_per_seq) {
    bad("block_table size");
  }
}

}  // namespace

void check_forward_batch(const ForwardBatch& b, const BatchLimits& l) {
  const auto bad = [&l](const std::string& what) {
    fail(ErrorCode::kInternal, l.backend + ": malformed batch: " + what);
  };
  check_sizes(b, l, bad);
  const int32_t n = b.n_tokens();
  const int64_t slots = static_cast<int64_t>(l.pool.num_blocks) * l.pool.block_size;
  for (int32_t t = 0; t < n; ++t) {
    const int32_t id = b.token_ids[t];
    if (id < previous_sample_token(l.previous_sample_rows - 1) || id >= l.vocab_size) {
      bad("token id");
    }
    if (b.slot_mapping[t] < 0 || b.slot_mapping[t] >= slots) bad("slot");
    if (b.positions[t] < 0) bad("position");
  }
  for (int32_t s = 0; s < b.n_seqs(); ++s) {
    if (b.seq_start[s] > b.seq_start[s + 1]) bad("seq_start order");
    const int32_t len = b.seq_start[s + 1] - b.seq_start[s];
    const int32_t needed = (b.context_len[s] + l.pool.block_size - 1) / l.pool.block_size;
    if (b.context_len[s] <= 0 || (l.max_context > 0 && b.context_len[s] > l.max_context) ||
        len > b.context_len[s] || needed > b.max_blocks_per_seq) {
      bad("context_len");
    }
    for (int32_t j = 0; j < needed; ++j) {
      const int32_t blk = b.block_table[s * b.max_blocks_per_seq + j];
      if (blk < 0 || blk >= l.pool.num_blocks) bad("block id");
    }
    for (int32_t t = b.seq_start[s]; t < b.seq_start[s + 1]; ++t) {
      const int32_t exact = b.context_len[s] - len + (t - b.seq_start[s]);
      if (l.exact_positions ? b.positions[t] != exact : b.positions[t] >= b.context_len[s]) {
        bad(l.exact_positions ? "position" : "position beyond context_len");
      }
    }
  }
  for (int32_t r : b.logits_rows) {
    if (r < 0 || r >= n) bad("logits row");
  }
}

}  // namespace autoglm
