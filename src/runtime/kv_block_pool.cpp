// See kv_block_pool.h.
#include "runtime/kv_block_pool.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace autoglm {

uint64_t cpu_kv_bytes_per_token(const ModelConfig& c) {
  return static_cast<uint64_t>(c.num_hidden_layers) * 2 *
         static_cast<uint64_t>(c.num_key_value_heads) * static_cast<uint64_t>(c.head_dim) *
         sizeof(float);
}

KvPoolShape kv_pool_for_budget(const ModelConfig& config, uint64_t budget_bytes,
                               int32_t block_size) {
  if (block_size <= 0) fail(ErrorCode::kInvalidArgument, "kv block size must be >= 1");
  const uint64_t per_block = cpu_kv_bytes_per_token(config) * static_cast<uint64_t>(block_size);
  if (per_block == 0) fail(ErrorCode::kInvalidModel, "model has an empty KV cache per token");
  const uint64_t blocks = budget_bytes / per_block;
  if (blocks == 0) {
    fail(ErrorCode::kInvalidArgument, "KV cache budget of " + std::to_string(budget_bytes) +
                                          " bytes holds no block of " + std::to_string(block_size) +
                                          " tokens (" + std::to_string(per_block) + " bytes)");
  }
  // Block ids and slots are int32: cap the pool so block * block_size stays representable.
  const uint64_t max_blocks = static_cast<uint64_t>(INT32_MAX) / static_cast<uint64_t>(block_size);
  return KvPoolShape{static_cast<int32_t>(std::min(blocks, max_blocks)), block_size};
}

KvBlockPool::KvBlockPool(KvPoolShape shape) : shape_(shape) {
  if (shape.num_blocks <= 0 || shape.block_size <= 0) {
    fail(ErrorCode::kInvalidArgument, "KV block pool needs positive blocks and block size");
  }
  free_.reserve(static_cast<size_t>(shape.num_blocks));
  in_use_.assign(static_cast<size_t>(shape.num_blocks), false);
  // Pushed in reverse so the first allocations get blocks 0, 1, 2, ...
  for (int32_t id = shape.num_blocks - 1; id >= 0; --id) free_.push_back(id);
}

int32_t KvBlockPool::blocks_for_tokens(int64_t tokens) const {
  return static_cast<int32_t>((tokens + shape_.block_size - 1) / shape_.block_size);
}

std::vector<int32_t> KvBlockPool::allocate(int32_t count) {
  if (count < 0 || count > free_blocks()) {
    fail(ErrorCode::kResourceExhausted, "KV cache: need " + std::to_string(count) +
                                            " more blocks of " + std::to_string(shape_.block_size) +
                                            " tokens, " + std::to_string(free_blocks()) + " of " +
                                            std::to_string(shape_.num_blocks) + " free");
  }
  std::vector<int32_t> out(free_.end() - count, free_.end());
  free_.resize(free_.size() - static_cast<size_t>(count));
  for (const int32_t id : out) in_use_[static_cast<size_t>(id)] = true;
  return out;
}

void KvBlockPool::release(std::span<const int32_t> blocks) {
  for (const int32_t id : blocks) {
    if (id < 0 || id >= shape_.num_blocks || !in_use_[static_cast<size_t>(id)]) {
      fail(ErrorCode::kInternal,
           "KV block pool: released block " + std::to_string(id) + " was not allocated");
    }
    in_use_[static_cast<size_t>(id)] = false;
    free_.push_back(id);
  }
}

SequenceBlocks::~SequenceBlocks() {
  pool_->release(blocks_);
}

int64_t SequenceBlocks::capacity_tokens() const {
  return static_cast<int64_t>(blocks_.size()) * pool_->shape().block_size;
}

void SequenceBlocks::reserve_tokens(int64_t tokens) {
  const int32_t needed = pool_->blocks_for_tokens(tokens) - static_cast<int32_t>(blocks_.size());
  if (needed <= 0) return;
  const std::vector<int32_t> more = pool_->allocate(needed);
  blocks_.insert(blocks_.end(), more.begin(), more.end());
}

int32_t SequenceBlocks::slot(int32_t position) const {
  const int32_t block_size = pool_->shape().block_size;
  return blocks_.at(static_cast<size_t>(position / block_size)) * block_size +
         position % block_size;
}

}  // namespace autoglm
