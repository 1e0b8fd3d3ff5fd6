// Paged attention on the GPU: causal attention of a ragged batch (prefill chunks and decode
// tokens of many sequences) over keys that live partly in earlier steps' blocks (prefix-cache
// hits, chunked prefill). The layout
// and the batch description mirror the CPU backend (backend.h), so both compute the same thing.
// Thread ownership: host launchers called by the engine thread; everything runs on `stream`.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace autoglm::cuda {

enum class ActType : uint8_t { kBF16, kF16 };  // activation and KV-cache element type

// One layer of the KV pool: K and V each [num_blocks * block_size][num_kv_heads * head_dim],
// row `slot` = block * block_size + offset. An FP8 pool (AttentionShape::kv_fp8) holds E4M3
// bytes, a block's keys of one KV head together: K as [num_blocks][num_kv_heads][block_size]
// [head_dim] with each row's 16-byte chunks permuted by its slot (fp8_k_offset), V transposed,
// [num_blocks][num_kv_heads][head_dim][block_size], so that a dim's consecutive keys are
// consecutive bytes (the P V product reads them that way); block_size is then a multiple of 16.
// So 16 keys of one head are two contiguous runs (K and V) that a decode warp fetches with two
// bulk copies, and they land in shared memory already in the bank-conflict-free order its loads
// want: the eight keys one load instruction reads (0, 1, 4, 5, 8, 9, 12, 13 of 16, plus 0 or 2)
// find the same logical chunk in eight different bank groups.
struct PagedKvLayer {
  void* k = nullptr;
  void* v = nullptr;
};

#if defined(__CUDACC__)
#define AUTOGLM_HOST_DEVICE __host__ __device__
#else
#define AUTOGLM_HOST_DEVICE
#endif

// Where an FP8 pool's K row of slot `slot` (its offset in the block) keeps logical 16-byte chunk
// `chunk`: the chunks are permuted by the slot's low four bits at head_dim 128 and 64 (the
// attention kernels' sizes), left in order at any other.
AUTOGLM_HOST_DEVICE constexpr int fp8_k_chunk_at(int slot, int chunk, int head_dim) {
  if (head_dim == 128) return chunk ^ ((slot & 1) | ((slot >> 1) & 6));
  return head_dim == 64 ? chunk ^ ((slot >> 2) & 3) : chunk;
}

// The byte of an FP8 pool's K for (block, kv_head, slot in the block, dim).
AUTOGLM_HOST_DEVICE constexpr int64_t fp8_k_offset(int64_t block, int kv_head, int slot, int dim,
                                                   int num_kv_heads, int head_dim, int block_size) {
  return ((block * num_kv_heads + kv_head) * block_size + slot) * head_dim +
         fp8_k_chunk_at(slot, dim >> 4, head_dim) * 16 + (dim & 15);
}

// The step's batch, all pointers on the device, same meaning as ForwardBatch.
struct AttentionBatch {
  const int32_t* seq_start = nullptr;     // [n_seqs + 1] token offsets of each sequence
  const int32_t* context_len = nullptr;   // [n_seqs] tokens in the KV after this step
  const int32_t* block_table = nullptr;   // [n_seqs * max_blocks_per_seq]
  const int32_t* slot_mapping = nullptr;  // [n_tokens] KV slot of each new token
  int32_t max_blocks_per_seq = 0;
  int32_t n_tokens = 0;
  int32_t n_seqs = 0;
  int32_t max_query_len = 0;    // host-side max over sequences of this step's tokens
  int32_t max_context_len = 0;  // host-side max of context_len
  int32_t block_size = 16;
  // A mixed step (decode tokens and prefill chunks): the indices of the sequences with more than
  // one token this step, ascending, and how many there are. With it, the one-token sequences run
  // through the decode kernel and only these through the prefill kernel, whose 128-row tiles
  // would otherwise hold one decode token's 16 rows each and whose grid would span every
  // sequence times the longest chunk's row tiles. nullptr: one kernel for the whole batch.
  const int32_t* prefill_seqs = nullptr;
  int32_t n_prefill_seqs = 0;
  // The prefill kernel's query tile: 0 lets paged_attention pick (64 rows when 128-row tiles
  // would leave SMs idle, e.g. a serving step's one chunk; else 128); 64 or 128 forces one
  // (tests and benchmarks run both).
  int32_t prefill_rows = 0;
};

struct AttentionShape {
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;  // divides num_heads (GQA)
  int32_t head_dim = 0;      // 64, 128 (others may be rejected with a clear error)
  float scale = 0.0f;        // usually 1 / sqrt(head_dim)
  // The pool holds FP8 E4M3 (unscaled: values saturate at +-448) instead of the activation
  // type; the products run in FP16 and q and out stay in the activation type.
  bool kv_fp8 = false;
};

// Bytes of scratch paged_attention needs for this batch (split-KV partial results).
size_t paged_attention_workspace_bytes(const AttentionBatch& batch, const AttentionShape& shape);

// out[t][h * head_dim + d]: token t of sequence s (the j-th of its L tokens this step) sits at
// key position context_len[s] - L + j and attends to keys [0, that position] of sequence s,
// read through its block table (this step's keys must already be in their slots: qkv_norm_rope
// writes them, kernels.h).
// q and out are [n_tokens][num_heads * head_dim]; accumulation in fp32.
void paged_attention(const AttentionBatch& batch, const AttentionShape& shape, const void* q,
                     PagedKvLayer kv, void* out, void* workspace, size_t workspace_bytes,
                     ActType type, cudaStream_t stream);

}  // namespace autoglm::cuda
