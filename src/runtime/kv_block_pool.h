// The KV block pool's bookkeeping: how many fixed-size blocks a memory budget buys, a free list
// that hands block ids out and takes them back, and a per-sequence block table that grows one
// block at a time. The backend owns the memory; this only decides which block ids a sequence
// uses, so sequences never need contiguous KV tensors.
// Thread ownership: a pool and its SequenceBlocks are used by one thread (the engine thread).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/model_config.h"

namespace autoglm {

// Bytes of the CPU backend's fp32 K and V for one token: layers * 2 * kv_heads * head_dim * 4.
uint64_t cpu_kv_bytes_per_token(const ModelConfig& config);

// The pool shape a budget of `budget_bytes` buys for blocks of `block_size` tokens. Throws
// Error(kInvalidArgument) if the budget does not hold one block (the message gives the sizes).
KvPoolShape kv_pool_for_budget(const ModelConfig& config, uint64_t budget_bytes,
                               int32_t block_size);

class KvBlockPool {
 public:
  explicit KvBlockPool(KvPoolShape shape);

  // Takes `count` blocks, or throws Error(kResourceExhausted) with the numbers and takes none.
  std::vector<int32_t> allocate(int32_t count);
  void release(std::span<const int32_t> blocks);

  KvPoolShape shape() const { return shape_; }
  int32_t free_blocks() const { return static_cast<int32_t>(free_.size()); }
  int32_t blocks_for_tokens(int64_t tokens) const;

 private:
  KvPoolShape shape_;
  std::vector<int32_t> free_;  // a stack: the most recently released block is reused first
  std::vector<bool> in_use_;   // catches double and foreign releases
};

// The block table of one sequence. Returns its blocks to the pool when destroyed.
class SequenceBlocks {
 public:
  explicit SequenceBlocks(KvBlockPool& pool) : pool_(&pool) {}
  ~SequenceBlocks();
  SequenceBlocks(const SequenceBlocks&) = delete;
  SequenceBlocks& operator=(const SequenceBlocks&) = delete;

  // Grows the table so that `tokens` KV slots exist (never shrinks).
  void reserve_tokens(int64_t tokens);
  // The KV slot (block * block_size + offset) of token position `position`.
  int32_t slot(int32_t position) const;
  std::span<const int32_t> table() const { return blocks_; }
  int64_t capacity_tokens() const;

 private:
  KvBlockPool* pool_;
  std::vector<int32_t> blocks_;
};

}  // namespace autoglm
