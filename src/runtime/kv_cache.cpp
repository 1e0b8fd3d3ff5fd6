// The KV cache manager (see kv_cache.h): block states and ref counts, the SHA-256 hash chain
// of the prefix cache (OpenSSL EVP), the LRU list of cached-free blocks, and the invariant
// checker the engine runs after every step in debug builds.
// Thread ownership: the engine thread only.
#include "runtime/kv_cache.h"

#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <string>

#include "core/error.h"

namespace autoglm {
namespace {

// One SHA-256 computation at a time. The digest is fetched from the provider once and the
// context reused: OpenSSL 3's implicit fetch and context allocation cost more than hashing
// one block.
class Sha256 {
 public:
  Sha256()
      : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr), &EVP_MD_free),
        ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (!md_ || !ctx_) fail(ErrorCode::kInternal, "kv cache: cannot set up OpenSSL SHA-256");
  }
  // One per thread: the manager lives on the engine thread, tests may use others.
  static Sha256& for_this_thread() {
    thread_local Sha256 sha;
    return sha;
  }
  void begin() {
    if (EVP_DigestInit_ex(ctx_.get(), md_.get(), nullptr) != 1) {
      fail(ErrorCode::kInternal, "kv cache: SHA-256 init failed");
    }
  }
  void update(const void* data, size_t size) {
    if (size > 0 && EVP_DigestUpdate(ctx_.get(), data, size) != 1) {
      fail(ErrorCode::kInternal, "kv cache: SHA-256 update failed");
    }
  }
  // Length-prefixed so that ("ab", "c") and ("a", "bc") hash differently.
  void update_string(std::string_view text) {
    uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i));
    update(length, sizeof length);
    update(text.data(), text.size());
  }
  BlockHash finish() {
    BlockHash out;
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), out.bytes.data(), &size) != 1 || size != out.bytes.size()) {
      fail(ErrorCode::kInternal, "kv cache: SHA-256 final failed");
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// Hashes the blocks of one sequence: the namespace digest (model id + tenant salt) is computed
// once, then each block is SHA-256(parent || namespace || token ids as little-endian int32).
// The first block's parent is 32 zero bytes.
class ChainHasher {
 public:
  ChainHasher(std::string_view model_id, std::string_view tenant_salt, int32_t block_size)
      : sha_(Sha256::for_this_thread()),
        block_size_(block_size),
        token_bytes_(static_cast<size_t>(block_size) * 4) {
    sha_.begin();
    sha_.update_string("autoglm kv namespace v1");
    sha_.update_string(model_id);
    sha_.update_string(tenant_salt);
    namespace_ = sha_.finish();
  }

  // The hash of tokens[block_index*block_size, (block_index+1)*block_size) given its parent.
  BlockHash block(const BlockHash& parent, std::span<const int32_t> tokens, int64_t block_index) {
    const auto first = tokens.begin() + block_index * block_size_;
    for (int32_t i = 0; i < block_size_; ++i) {
      const auto value = static_cast<uint32_t>(first[i]);
      for (int byte = 0; byte < 4; ++byte) {
        token_bytes_[4 * static_cast<size_t>(i) + byte] = static_cast<uint8_t>(value >> (8 * byte));
      }
    }
    sha_.begin();
    sha_.update(parent.bytes.data(), parent.bytes.size());
    sha_.update(namespace_.bytes.data(), namespace_.bytes.size());
    sha_.update(token_bytes_.data(), token_bytes_.size());
    return sha_.finish();
  }

  // The hash of block `block_index` computed from the start of the chain.
  BlockHash chain_to(std::span<const int32_t> tokens, int64_t block_index) {
    BlockHash hash;
    for (int64_t i = 0; i <= block_index; ++i) hash = block(hash, tokens, i);
    return hash;
  }

 private:
  Sha256& sha_;
  BlockHash namespace_;
  int32_t block_size_;
  std::vector<uint8_t> token_bytes_;
};

std::string block_name(BlockId block) {
  return "block " + std::to_string(block);
}

}  // namespace

BlockHash compute_block_hash(const BlockHash& parent, std::string_view model_id,
                             std::string_view tenant_salt, std::span<const int32_t> block_tokens) {
  if (block_tokens.empty()) fail(ErrorCode::kInvalidArgument, "kv cache: hash of an empty block");
  ChainHasher hasher(model_id, tenant_salt, static_cast<int32_t>(block_tokens.size()));
  return hasher.block(parent, block_tokens, 0);
}

size_t KvCacheManager::BlockHashHasher::operator()(const BlockHash& hash) const {
  size_t value = 0;  // SHA-256 output is uniform, so any 8 bytes make a good bucket key
  std::memcpy(&value, hash.bytes.data(), sizeof value);
  return value;
}

KvCacheManager::KvCacheManager(KvCacheConfig config) : config_(std::move(config)) {
  if (config_.num_blocks < 0 || config_.block_size < 1) {
    fail(ErrorCode::kInvalidArgument,
         "kv cache: need num_blocks >= 0 and block_size >= 1, got num_blocks " +
             std::to_string(config_.num_blocks) + ", block_size " +
             std::to_string(config_.block_size));
  }
  blocks_.resize(static_cast<size_t>(config_.num_blocks));
  hashes_.resize(blocks_.size());
  free_stack_.reserve(blocks_.size());
  // Pushed in reverse so that a fresh manager hands out 0, 1, 2, ...
  for (BlockId b = config_.num_blocks - 1; b >= 0; --b) free_stack_.push_back(b);
  hash_index_.reserve(blocks_.size());
}

const KvCacheConfig& KvCacheManager::config() const {
  return config_;
}

int32_t KvCacheManager::available_blocks() const {
  return static_cast<int32_t>(free_stack_.size()) + lru_size_;
}

KvCacheStats KvCacheManager::stats() const {
  KvCacheStats out;
  out.total_blocks = config_.num_blocks;
  out.used_blocks = used_blocks_;
  out.cached_free_blocks = lru_size_;
  out.prefix_queries = prefix_queries_;
  out.prefix_hits = prefix_hits_;
  out.evictions = evictions_;
  return out;
}

int32_t KvCacheManager::ref_count(BlockId block) const {
  check_block_id(block, "ref_count");
  return blocks_[static_cast<size_t>(block)].ref_count;
}

void KvCacheManager::check_block_id(BlockId block, const char* what) const {
  if (block < 0 || block >= config_.num_blocks) {
    fail(ErrorCode::kInvalidArgument, std::string("kv cache: ") + what + ": block id " +
                                          std::to_string(block) + " is outside the pool of " +
                                          std::to_string(config_.num_blocks) + " blocks");
  }
}

void KvCacheManager::record_prefix_lookup(uint64_t queried_tokens, uint64_t hit_tokens) {
  prefix_queries_ += queried_tokens;
  prefix_hits_ += hit_tokens;
}

KvCacheManager::PrefixHit KvCacheManager::acquire_prefix(std::span<const int32_t> tokens,
                                                         std::string_view tenant_salt,
                                                         CountLookup count) {
  PrefixHit hit;
  if (!config_.enable_prefix_caching || tokens.empty()) return hit;
  if (count == CountLookup::kYes) prefix_queries_ += tokens.size();
  // Leave at least the last token uncached so the model runs and produces logits.
  const int64_t max_blocks = static_cast<int64_t>(tokens.size() - 1) / config_.block_size;
  if (max_blocks == 0 || hash_index_.empty()) return hit;

  ChainHasher hasher(config_.model_id, tenant_salt, config_.block_size);
  BlockHash parent;
  for (int64_t i = 0; i < max_blocks; ++i) {
    const BlockHash hash = hasher.block(parent, tokens, i);
    const auto found = hash_index_.find(hash);
    if (found == hash_index_.end()) break;
    const BlockId id = found->second;
    add_reference(id);
    hit.blocks.push_back(id);
    parent = hash;
  }
  hit.tokens = static_cast<int32_t>(hit.blocks.size()) * config_.block_size;
  if (count == CountLookup::kYes) prefix_hits_ += static_cast<uint64_t>(hit.tokens);
  return hit;
}

void KvCacheManager::add_reference(BlockId id) {
  Block& block = blocks_[static_cast<size_t>(id)];
  if (block.state == BlockState::kCachedFree) {
    lru_unlink(id);
    block.state = BlockState::kUsed;
    ++used_blocks_;
  }
  ++block.ref_count;
}

std::vector<BlockId> KvCacheManager::acquire_indexed_chain(std::span<const BlockId> blocks,
                                                           int32_t max_blocks) {
  std::vector<BlockId> out;
  for (const BlockId id : blocks) {
    if (static_cast<int32_t>(out.size()) >= max_blocks) break;
    check_block_id(id, "acquire_indexed_chain");
    if (!blocks_[static_cast<size_t>(id)].hashed) break;
    const auto found = hash_index_.find(hashes_[static_cast<size_t>(id)]);
    if (found == hash_index_.end()) break;
    add_reference(found->second);
    out.push_back(found->second);
  }
  return out;
}

std::optional<std::vector<BlockId>> KvCacheManager::allocate(int32_t count) {
  if (count < 0) {
    fail(ErrorCode::kInvalidArgument,
         "kv cache: allocate of a negative block count " + std::to_string(count));
  }
  if (count > available_blocks()) return std::nullopt;
  std::vector<BlockId> out;
  out.reserve(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) {
    const BlockId id = take_free_block();
    Block& block = blocks_[static_cast<size_t>(id)];
    block.ref_count = 1;
    block.state = BlockState::kUsed;
    ++used_blocks_;
    out.push_back(id);
  }
  return out;
}

BlockId KvCacheManager::take_free_block() {
  if (!free_stack_.empty()) {
    const BlockId id = free_stack_.back();
    free_stack_.pop_back();
    return id;
  }
  const BlockId id = lru_head_;
  if (id < 0) fail(ErrorCode::kInternal, "kv cache: no block to take (counts are wrong)");
  lru_unlink(id);
  Block& block = blocks_[static_cast<size_t>(id)];
  hash_index_.erase(hashes_[static_cast<size_t>(id)]);
  block.indexed = false;
  block.hashed = false;
  ++evictions_;
  return id;
}

void KvCacheManager::commit_full_block(std::span<const int32_t> tokens, int32_t block_index,
                                       std::span<const BlockId> block_table,
                                       std::string_view tenant_salt) {
  if (!config_.enable_prefix_caching) return;
  const int64_t block_end = (static_cast<int64_t>(block_index) + 1) * config_.block_size;
  if (block_index < 0 || static_cast<size_t>(block_index) >= block_table.size() ||
      block_end > static_cast<int64_t>(tokens.size())) {
    fail(ErrorCode::kInvalidArgument, "kv cache: commit_full_block of block index " +
                                          std::to_string(block_index) + " with a table of " +
                                          std::to_string(block_table.size()) + " blocks and " +
                                          std::to_string(tokens.size()) + " tokens (block size " +
                                          std::to_string(config_.block_size) + ")");
  }
  const BlockId id = block_table[static_cast<size_t>(block_index)];
  check_block_id(id, "commit_full_block");
  Block& block = blocks_[static_cast<size_t>(id)];
  if (block.ref_count == 0) {
    fail(ErrorCode::kInvalidArgument,
         "kv cache: commit_full_block of " + block_name(id) + " which holds no reference");
  }
  if (block.hashed) return;  // committed before, or shared from the cache

  ChainHasher hasher(config_.model_id, tenant_salt, config_.block_size);
  BlockHash parent;
  if (block_index > 0) {
    const BlockId parent_id = block_table[static_cast<size_t>(block_index) - 1];
    check_block_id(parent_id, "commit_full_block");
    const Block& parent_block = blocks_[static_cast<size_t>(parent_id)];
    // The engine commits blocks in order, so the parent normally carries its hash already;
    // otherwise the chain is rebuilt from the start.
    parent = parent_block.hashed ? hashes_[static_cast<size_t>(parent_id)]
                                 : hasher.chain_to(tokens, block_index - 1);
  }
  BlockHash& hash = hashes_[static_cast<size_t>(id)];
  hash = hasher.block(parent, tokens, block_index);
  block.hashed = true;
  // A block computed twice (two requests prefilled the same prefix at once) keeps its hash
  // for its children, but only the first copy is indexed and reusable.
  if (hash_index_.emplace(hash, id).second) block.indexed = true;
}

void KvCacheManager::release(std::span<const BlockId> blocks) {
  // First pass: drop the references, undoing them all if one is not held.
  for (size_t i = 0; i < blocks.size(); ++i) {
    const BlockId id = blocks[i];
    const bool valid = id >= 0 && id < config_.num_blocks;
    if (!valid || blocks_[static_cast<size_t>(id)].ref_count == 0) {
      for (size_t j = 0; j < i; ++j) ++blocks_[static_cast<size_t>(blocks[j])].ref_count;
      check_block_id(id, "release");
      fail(ErrorCode::kInvalidArgument,
           "kv cache: release of " + block_name(id) + " which holds no reference (double release)");
    }
    --blocks_[static_cast<size_t>(id)].ref_count;
  }
  // Second pass, in the order given: the first block given joins the LRU list first and is
  // evicted first. Callers pass a table tail first, so a cached chain loses its end before the
  // blocks its hashes depend on (vLLM frees in the same order).
  for (size_t i = 0; i < blocks.size(); ++i) {
    const BlockId id = blocks[i];
    Block& block = blocks_[static_cast<size_t>(id)];
    if (block.ref_count != 0 || block.state != BlockState::kUsed) continue;
    --used_blocks_;
    if (block.indexed) {
      block.state = BlockState::kCachedFree;
      lru_push_back(id);
    } else {
      block.hashed = false;
      block.state = BlockState::kFree;
      free_stack_.push_back(id);
    }
  }
}

void KvCacheManager::lru_push_back(BlockId id) {
  Block& block = blocks_[static_cast<size_t>(id)];
  block.lru_prev = lru_tail_;
  block.lru_next = -1;
  if (lru_tail_ >= 0) {
    blocks_[static_cast<size_t>(lru_tail_)].lru_next = id;
  } else {
    lru_head_ = id;
  }
  lru_tail_ = id;
  ++lru_size_;
}

void KvCacheManager::lru_unlink(BlockId id) {
  Block& block = blocks_[static_cast<size_t>(id)];
  if (block.lru_prev >= 0) {
    blocks_[static_cast<size_t>(block.lru_prev)].lru_next = block.lru_next;
  } else {
    lru_head_ = block.lru_next;
  }
  if (block.lru_next >= 0) {
    blocks_[static_cast<size_t>(block.lru_next)].lru_prev = block.lru_prev;
  } else {
    lru_tail_ = block.lru_prev;
  }
  block.lru_prev = -1;
  block.lru_next = -1;
  --lru_size_;
}

// ---- invariant checker ---------------------------------------------------------------------

namespace {
[[noreturn]] void violation(const std::string& what) {
  fail(ErrorCode::kInternal, "kv cache invariant violated: " + what);
}
}  // namespace

void KvCacheManager::check_invariants(
    std::span<const std::span<const BlockId>> live_block_tables) const {
  check_table_refs(live_block_tables);
  check_free_lists(check_block_states());
}

void KvCacheManager::check_table_refs(
    std::span<const std::span<const BlockId>> live_block_tables) const {
  std::vector<int32_t> appearances(blocks_.size(), 0);
  for (size_t t = 0; t < live_block_tables.size(); ++t) {
    for (const BlockId id : live_block_tables[t]) {
      if (id < 0 || id >= config_.num_blocks) {
        violation("live table " + std::to_string(t) + " holds block id " + std::to_string(id) +
                  " outside the pool of " + std::to_string(config_.num_blocks));
      }
      ++appearances[static_cast<size_t>(id)];
    }
  }
  for (size_t b = 0; b < blocks_.size(); ++b) {
    if (appearances[b] != blocks_[b].ref_count) {
      violation(block_name(static_cast<BlockId>(b)) + " has ref count " +
                std::to_string(blocks_[b].ref_count) + " but appears " +
                std::to_string(appearances[b]) + " times in the live block tables");
    }
  }
}

KvCacheManager::StateCounts KvCacheManager::check_block_states() const {
  StateCounts counts;
  int32_t used = 0;
  size_t indexed = 0;
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const Block& block = blocks_[b];
    const auto id = static_cast<BlockId>(b);
    if ((block.state == BlockState::kUsed) != (block.ref_count > 0)) {
      violation(block_name(id) + " has ref count " + std::to_string(block.ref_count) +
                " but is not in the matching state");
    }
    switch (block.state) {
      case BlockState::kUsed:
        ++used;
        break;
      case BlockState::kFree:
        ++counts.free;
        if (block.hashed) violation(block_name(id) + " is free but still carries a hash");
        break;
      case BlockState::kCachedFree:
        ++counts.cached_free;
        if (!block.indexed) violation(block_name(id) + " is cached-free without an indexed hash");
        break;
    }
    if (block.indexed) {
      const auto found = hash_index_.find(hashes_[b]);
      if (!block.hashed || found == hash_index_.end() || found->second != id) {
        violation(block_name(id) + " is marked indexed but the hash index does not point at it");
      }
      ++indexed;
    }
  }
  if (used != used_blocks_) {
    violation("used block count " + std::to_string(used_blocks_) + " but " + std::to_string(used) +
              " blocks are used");
  }
  // Each indexed block is found under its own hash, so the index holds at least that many
  // distinct entries; equal sizes leave no entry pointing anywhere else.
  if (indexed != hash_index_.size()) {
    violation("hash index has " + std::to_string(hash_index_.size()) + " entries but " +
              std::to_string(indexed) + " blocks are indexed");
  }
  return counts;
}

void KvCacheManager::check_free_lists(const StateCounts& counts) const {
  std::vector<uint8_t> listed(blocks_.size(), 0);
  for (const BlockId id : free_stack_) {
    if (id < 0 || id >= config_.num_blocks) violation("free list holds id " + std::to_string(id));
    if (listed[static_cast<size_t>(id)]++) violation(block_name(id) + " is on the free list twice");
    if (blocks_[static_cast<size_t>(id)].state != BlockState::kFree) {
      violation(block_name(id) + " is on the free list but is not free");
    }
  }
  if (free_stack_.size() != counts.free) violation("free list size does not match free blocks");

  size_t walked = 0;
  BlockId previous = -1;
  for (BlockId id = lru_head_; id >= 0; id = blocks_[static_cast<size_t>(id)].lru_next) {
    if (id >= config_.num_blocks) violation("LRU list holds id " + std::to_string(id));
    const Block& block = blocks_[static_cast<size_t>(id)];
    if (listed[static_cast<size_t>(id)]++) {
      violation(block_name(id) + " is on two free lists (or the LRU list loops)");
    }
    if (block.state != BlockState::kCachedFree) {
      violation(block_name(id) + " is on the LRU list but is not cached-free");
    }
    if (block.lru_prev != previous) violation(block_name(id) + " has a wrong LRU back link");
    previous = id;
    ++walked;
  }
  if (previous != lru_tail_) violation("LRU tail does not end the list");
  if (walked != counts.cached_free || static_cast<int32_t>(walked) != lru_size_) {
    violation("LRU list length " + std::to_string(walked) + ", recorded size " +
              std::to_string(lru_size_) + ", cached-free blocks " +
              std::to_string(counts.cached_free));
  }
}

}  // namespace autoglm
