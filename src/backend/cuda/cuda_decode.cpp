// See cuda_backend_impl.h and decode_graphs.h: pure decode steps (one token per sequence, one
// logits row per sequence) replayed from CUDA graphs. The step's arrays are padded to the batch
// bucket and laid out at the offsets the bucket's graph was captured with; one H2D copy of them
// and of the sampling parameters after them goes before the graph launch, as in the eager path.
// Thread ownership: the engine thread, like every CudaBackend method.
#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_backend_impl.h"

namespace autoglm::cuda {

int32_t CudaBackend::graph_rows(const ForwardBatch& b) const {
  const int32_t n = b.n_seqs();
  if (!options_.cuda_graphs || n == 0 || b.n_tokens() != n ||
      b.logits_rows.size() != static_cast<size_t>(n)) {
    return 0;
  }
  for (int32_t s = 0; s <= n; ++s) {
    if (b.seq_start[s] != s) return 0;  // not one token per sequence
  }
  // Every workspace is sized for max_batched_tokens rows and max_num_seqs sequences.
  const int32_t cap = std::min(options_.max_num_seqs, options_.max_batched_tokens);
  return decode_batch_bucket(n, cap);
}

CudaBackend::DeviceBatch CudaBackend::pack_decode_arrays(const ForwardBatch& b, int32_t rows,
                                                         int32_t context) {
  const int32_t n = b.n_seqs();
  const int32_t stride = (context + pool_.block_size - 1) / pool_.block_size;
  const int32_t copied = std::min(stride, b.max_blocks_per_seq);
  int32_t* host = static_cast<int32_t*>(current_slot().ints.get());
  int32_t* token_ids = host;
  int32_t* positions = host + rows;
  int32_t* logits_rows = host + 2 * static_cast<size_t>(rows);
  int32_t* slots = host + 3 * static_cast<size_t>(rows);
  int32_t* seq_start = host + 4 * static_cast<size_t>(rows);
  int32_t* context_len = seq_start + rows + 1;
  int32_t* sample_slot = context_len + rows;
  int32_t* table = sample_slot + 1;
  const size_t total = static_cast<size_t>(table - host) + static_cast<size_t>(rows) * stride;
  // Padding sequences: token 0 at position 0, no KV slot (qkv_norm_rope writes nothing for it), one
  // key read from block 0 (the pool is zeroed at allocation, so the read is finite), a greedy
  // sample dropped.
  std::fill(host, host + total, 0);
  for (int32_t s = 0; s < rows; ++s) {
    seq_start[s] = s;
    logits_rows[s] = s;
    slots[s] = -1;
    context_len[s] = 1;
  }
  seq_start[rows] = rows;
  *sample_slot = current_slot_index();
  std::copy(b.token_ids.begin(), b.token_ids.end(), token_ids);
  std::copy(b.positions.begin(), b.positions.end(), positions);
  std::copy(b.logits_rows.begin(), b.logits_rows.end(), logits_rows);
  std::copy(b.slot_mapping.begin(), b.slot_mapping.end(), slots);
  std::copy(b.context_len.begin(), b.context_len.end(), context_len);
  for (int32_t s = 0; s < n; ++s) {
    const int32_t* row = b.block_table.data() + static_cast<size_t>(s) * b.max_blocks_per_seq;
    std::copy(row, row + copied, table + static_cast<size_t>(s) * stride);
  }
  const auto device = [&](const int32_t* at) { return buf_.ints + (at - host); };
  DeviceBatch d;
  d.token_ids = device(token_ids);
  d.positions = device(positions);
  d.logits_rows = device(logits_rows);
  d.sample_slot = device(sample_slot);
  d.logits_rows_in_order = true;
  d.packed_ints = total;
  AttentionBatch& a = d.attention;
  a.slot_mapping = device(slots);
  a.seq_start = device(seq_start);
  a.context_len = device(context_len);
  a.block_table = device(table);
  a.max_blocks_per_seq = stride;
  a.n_tokens = rows;
  a.n_seqs = rows;
  a.block_size = pool_.block_size;
  a.max_query_len = 1;
  a.max_context_len = context;
  return d;
}

void CudaBackend::decode_with_graph(const ForwardBatch& batch, const SampleBatch& sampling,
                                    int32_t rows) {
  const int32_t longest = *std::max_element(batch.context_len.begin(), batch.context_len.end());
  const int32_t context = decode_context_bucket(longest, max_context_);
  DeviceBatch db = pack_decode_arrays(batch, rows, context);
  pack_sampling(sampling, rows, db);
  upload_packed(db);
  graphs_.launch(rows, context, stream_.get(), [&] {
    encode_layers(db);
    encode_sampling(db, rows);
  });
}

}  // namespace autoglm::cuda
