// The scheduler's view of one request: its tokens (prompt, then generated), how many of them
// have K/V in the cache, its block table, its place in the queue (priority class, arrival
// order) and its deadlines. Plain data: no sampling, no text, no locks.
// Thread ownership: created on the engine thread and owned by the Scheduler; the engine thread
// only reads it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "runtime/kv_cache.h"

namespace autoglm {

using SteadyTime = std::chrono::steady_clock::time_point;
using SequenceId = int64_t;

enum class SequenceStatus { kWaiting, kRunning, kFinished };

// Why a sequence left the scheduler. kStop and kLength are decided by the engine's stop rules;
// the others by the scheduler or the caller.
enum class SequenceEnd { kNone, kStop, kLength, kCancelled, kTimeout };

// What a new request asks of the scheduler (the engine fills it from the public request).
struct SequenceRequest {
  SequenceId id = 0;
  std::vector<int32_t> prompt;
  int32_t max_tokens = 16;
  int32_t priority = 0;  // lower number is served first; FCFS within a class
  std::string tenant_salt;
  std::string session_key;             // session_key(tenant, session id), or empty: no session
  std::optional<SteadyTime> deadline;  // must finish by then, or ends with kTimeout
  std::optional<SteadyTime> queue_deadline;  // must start by then, or ends with kTimeout
};

struct Sequence {
  explicit Sequence(SequenceRequest request, uint64_t arrival_order);

  SequenceRequest request;
  uint64_t arrival = 0;          // monotonic admission order (FCFS tie-break)
  std::vector<int32_t> tokens;   // prompt followed by the generated tokens
  int32_t num_computed = 0;      // tokens[0, num_computed) have K/V in `blocks`
  int32_t committed_blocks = 0;  // leading full blocks already offered to the prefix cache
  std::vector<BlockId> blocks;
  SequenceStatus status = SequenceStatus::kWaiting;
  SequenceEnd end = SequenceEnd::kNone;
  bool started = false;              // has been scheduled at least once (left the queue)
  int32_t cached_prompt_tokens = 0;  // prompt tokens whose prefill the prefix cache skipped
  int32_t preemptions = 0;

  SequenceId id() const { return request.id; }
  int32_t prompt_len() const { return static_cast<int32_t>(request.prompt.size()); }
  int32_t generated() const { return static_cast<int32_t>(tokens.size()) - prompt_len(); }
  int32_t total_tokens() const { return static_cast<int32_t>(tokens.size()); }
  // Tokens still to feed before the model can produce the next token's logits.
  int32_t uncomputed() const { return total_tokens() - num_computed; }
  // A running sequence whose every token but the newest has K/V: it needs one decode token.
  bool is_decoding() const { return uncomputed() == 1 && generated() > 0; }
};

// Serving order: priority class first (lower number first), then arrival (earlier first).
bool served_before(const Sequence& a, const Sequence& b);

}  // namespace autoglm
