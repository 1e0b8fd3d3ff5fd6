// The KV cache manager: ref-counted blocks from the preallocated pool, a prefix cache of full
// blocks keyed by a hash chain, LRU eviction of free cached blocks, and an invariant checker.
// It decides which block ids hold which tokens; the backend owns the bytes.
// Thread ownership: the engine thread only (the scheduler calls it); no locks.
//
// Every block is in exactly one state:
//   free         ref count 0, holds nothing reusable; on the free stack.
//   cached-free  ref count 0, holds a committed full block that the hash index points at; on
//                the LRU list, evicted oldest-first when `allocate` runs out of free blocks.
//   used         ref count > 0; may hold a committed hash (then other requests can share it).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace autoglm {

using BlockId = int32_t;

// 256-bit chain hash of a full block: SHA-256(parent || namespace || token ids). The namespace
// folds in the model/adapter id and the tenant salt, so tenants never share cache entries.
struct BlockHash {
  std::array<uint8_t, 32> bytes{};
  friend bool operator==(const BlockHash&, const BlockHash&) = default;
};

// The chain hash of one full block: SHA-256(parent || N || block_tokens as little-endian
// int32), where N = SHA-256 of the length-prefixed strings "autoglm kv namespace v1",
// model_id and tenant_salt (each as a little-endian uint64 byte count, then the bytes). The
// first block's parent is all zeros. Exposed so tests can check the exact bytes hashed.
BlockHash compute_block_hash(const BlockHash& parent, std::string_view model_id,
                             std::string_view tenant_salt, std::span<const int32_t> block_tokens);

struct KvCacheConfig {
  int32_t num_blocks = 0;
  int32_t block_size = 16;
  bool enable_prefix_caching = true;
  std::string model_id;  // model + adapter + revision: part of every hash
};

struct KvCacheStats {
  int32_t total_blocks = 0;
  int32_t used_blocks = 0;         // ref count > 0
  int32_t cached_free_blocks = 0;  // ref count 0 but holding a reusable prefix (evictable)
  uint64_t prefix_queries = 0;     // tokens looked up
  uint64_t prefix_hits = 0;        // tokens found
  uint64_t evictions = 0;
};

class KvCacheManager {
 public:
  // Throws Error(kInvalidArgument) for num_blocks < 0 or block_size < 1.
  explicit KvCacheManager(KvCacheConfig config);

  // The longest cached prefix of `tokens` made of FULL blocks (never the whole prompt: at least
  // the last token is left to compute, so the model produces logits). Takes a reference on each
  // returned block. `tenant_salt` may be empty.
  struct PrefixHit {
    std::vector<BlockId> blocks;
    int32_t tokens = 0;  // blocks.size() * block_size
  };
  // `count` kNo leaves the queries/hits counters alone: the scheduler records a lookup once
  // per admission (record_prefix_lookup), not once per retry of a queue head that is blocked.
  enum class CountLookup : uint8_t { kYes, kNo };
  PrefixHit acquire_prefix(std::span<const int32_t> tokens, std::string_view tenant_salt,
                           CountLookup count = CountLookup::kYes);
  // Adds one lookup of `queried_tokens` that found `hit_tokens` to the stats.
  void record_prefix_lookup(uint64_t queried_tokens, uint64_t hit_tokens);

  // Blocks that can be handed out now (free + evictable cached).
  int32_t available_blocks() const;
  // Takes `count` fresh blocks (evicting LRU cached-free blocks as needed), ref count 1 each,
  // or nullopt and takes none. Throws Error(kInvalidArgument) for count < 0.
  std::optional<std::vector<BlockId>> allocate(int32_t count);

  // Records that `block` (the block_index-th of a sequence whose tokens are `tokens`, i.e.
  // tokens[block_index*block_size, (block_index+1)*block_size) are all computed) is full, so
  // later requests may reuse it. No-op when prefix caching is off or it is already cached.
  // Throws Error(kInvalidArgument) when the block is not full, not in the table, or not held.
  void commit_full_block(std::span<const int32_t> tokens, int32_t block_index,
                         std::span<const BlockId> block_table, std::string_view tenant_salt);

  // Drops one reference from each block (a finished, cancelled or preempted sequence). Blocks
  // at zero become cached-free (if they hold a committed prefix, LRU order) or free. They join
  // the LRU list in the order given, the first given being evicted first: pass a sequence's
  // table REVERSED (tail first), so a cached chain loses its end before its start. Throws
  // Error(kInvalidArgument) on a release of a block that holds no reference (double release)
  // and then changes nothing.
  void release(std::span<const BlockId> blocks);

  // Takes a reference on the blocks the prefix cache indexes under the chain of `blocks` (a
  // sequence's leading committed blocks, in order), at most `max_blocks` of them, stopping at
  // the first block that is not committed or whose chain is no longer indexed. Returns them in
  // chain order: exactly the blocks a later acquire_prefix of the same tokens finds. Sessions
  // pin with it (a block computed twice is pinned as the indexed copy, not the duplicate).
  std::vector<BlockId> acquire_indexed_chain(std::span<const BlockId> blocks, int32_t max_blocks);

  KvCacheStats stats() const;
  const KvCacheConfig& config() const;
  // The reference count of one block (tests and debugging). Throws for an id out of range.
  int32_t ref_count(BlockId block) const;

  // Debug checker: every block is exactly one of free / cached-free / used; ref counts equal
  // the number of times the block appears across `live_block_tables`; no block is in two
  // free lists; the hash index points only at blocks that hold that hash. Throws
  // Error(kInternal) describing the first violation. O(blocks + table entries).
  void check_invariants(std::span<const std::span<const BlockId>> live_block_tables) const;

 private:
  enum class BlockState : uint8_t { kFree, kCachedFree, kUsed };
  struct BlockHashHasher {
    size_t operator()(const BlockHash& hash) const;
  };
  struct Block {
    int32_t ref_count = 0;
    BlockState state = BlockState::kFree;
    bool hashed = false;    // committed full block: hashes_[id] is its chain hash
    bool indexed = false;   // the hash index maps hashes_[id] to this block (implies `hashed`)
    BlockId lru_prev = -1;  // neighbours on the LRU list (cached-free blocks only)
    BlockId lru_next = -1;
  };

  void check_block_id(BlockId block, const char* what) const;
  void add_reference(BlockId block);  // a cached-free block becomes used again
  BlockId take_free_block();          // from the free stack, else evicts the LRU head; -1 if none
  void lru_push_back(BlockId block);
  void lru_unlink(BlockId block);
  void check_table_refs(std::span<const std::span<const BlockId>> live_block_tables) const;
  struct StateCounts {
    size_t free = 0;
    size_t cached_free = 0;
  };
  StateCounts check_block_states() const;
  void check_free_lists(const StateCounts& counts) const;

  KvCacheConfig config_;
  std::vector<Block> blocks_;
  std::vector<BlockHash> hashes_;    // apart from blocks_, so state scans touch 16 bytes a block
  std::vector<BlockId> free_stack_;  // the most recently freed block is reused first
  BlockId lru_head_ = -1;            // oldest cached-free block: evicted first
  BlockId lru_tail_ = -1;
  int32_t lru_size_ = 0;
  int32_t used_blocks_ = 0;
  std::unordered_map<BlockHash, BlockId, BlockHashHasher> hash_index_;
  uint64_t prefix_queries_ = 0;
  uint64_t prefix_hits_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace autoglm
