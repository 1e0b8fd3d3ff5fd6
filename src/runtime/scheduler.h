// Continuous batching on plain data. Each step, schedule() builds one ragged batch: first one
// decode token for every running sequence (so inter-token latency stays smooth), then chunks of
// prefill for partially prefilled and then waiting sequences, within max_batched_tokens and
// max_num_seqs, served by priority class then arrival (FCFS). New sequences reuse the longest
// cached prefix from the KV manager and skip its prefill. When the pool cannot give a running
// sequence its next block, the sequence served last is preempted: its blocks are released and
// it goes back to waiting, to be recomputed from prompt + generated tokens. A waiting head of a
// higher priority class that lacks a seat or blocks preempts running sequences of lower
// classes the same way (priority preemption). advance() and resolve() (or update(), both)
// apply a step: its tokens computed, newly full blocks committed to the prefix cache, the
// sampled tokens appended and finished sequences freed. Admission limits (queue size, lengths,
// deadlines) are checked before add(), by AdmissionControl (request_queue.h). Thread ownership: the
// engine thread only; no locks.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "runtime/kv_cache.h"
#include "runtime/sequence.h"
#include "runtime/session_cache.h"

namespace autoglm {

struct SchedulerConfig {
  int32_t max_num_seqs = 64;         // sequences in one batch (and running at once)
  int32_t max_batched_tokens = 512;  // tokens in one batch, decode + prefill
};

// One sequence's share of a step: tokens [start, start + count) of its token list.
struct ScheduledChunk {
  SequenceId id = 0;
  int32_t start = 0;
  int32_t count = 0;
  bool wants_logits = false;  // the chunk ends at the newest token: sample the next one
  bool is_decode = false;
};

struct SequenceEnded {
  SequenceId id = 0;
  SequenceEnd end = SequenceEnd::kNone;
};

// The batch of one step. It owns the ForwardBatch arrays, so batch() can be passed to
// Backend::forward unchanged; logits row r belongs to sequence logits_owner[r].
// The ForwardBatch arrays it inherits go to Backend::forward unchanged (batch()).
struct StepPlan : ForwardBatchArrays {
  std::vector<ScheduledChunk> chunks;
  std::vector<SequenceId> logits_owner;
  int32_t num_decode_tokens = 0;
  int32_t num_prefill_tokens = 0;
  std::vector<SequenceId> started;    // scheduled for the first time (left the queue)
  std::vector<SequenceId> preempted;  // sent back to waiting by this step
  std::vector<SequenceEnded> ended;   // finished by schedule() itself (deadlines)
  SteadyTime time{};                  // the `now` it was scheduled at

  bool empty() const { return chunks.empty(); }
  ForwardBatch batch() const { return view(); }
};

// What the engine made of the logits: one entry per logits row, in order.
struct SampledRow {
  int32_t token = 0;
  SequenceEnd end = SequenceEnd::kNone;  // kStop / kLength when this token ends the stream
};
struct StepOutput {
  std::vector<SampledRow> rows;
};

class Scheduler {
 public:
  // `kv` (and `sessions`, when given) must outlive the scheduler. With `sessions`, a sequence
  // with a session key pins its computed full blocks there when it completes, expired sessions
  // are released at each schedule(), and sessions give their pins back (LRU first) before a
  // running sequence is preempted or when an idle pool cannot admit the queue head.
  Scheduler(SchedulerConfig config, KvCacheManager& kv, SessionCache* sessions = nullptr);

  // Queues an admitted request (its id must be new). The request's prompt must be non-empty.
  void add(SequenceRequest request);
  // Ends a waiting or running sequence now, releasing its blocks. False if the id is unknown
  // (already finished).
  bool cancel(SequenceId id);

  StepPlan schedule(SteadyTime now);
  // A step's results arrive in two halves, so that the next step can be scheduled while this
  // one runs (overlapped scheduling). advance(), once the step is submitted: its tokens count as
  // computed (newly full blocks are committed to the prefix cache), each sampling sequence gets
  // previous_sample_token(its logits row) as its newest token, which the next schedule() may
  // feed to the backend as it is, and a sequence that reached max_tokens ends (kLength).
  // resolve(), once the samples are on the host (before the next advance()): each placeholder
  // becomes the chosen token, and the rows whose `end` is set end their sequences. Sequences
  // cancelled or ended in between are skipped. Returns the sequences each ended.
  std::vector<SequenceEnded> advance(const StepPlan& plan);
  std::vector<SequenceEnded> resolve(const StepPlan& plan, const StepOutput& output);
  // Both at once, for a step collected before the next one is scheduled.
  std::vector<SequenceEnded> update(const StepPlan& plan, const StepOutput& output);

  const Sequence* find(SequenceId id) const;
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  bool idle() const { return waiting_.empty() && running_.empty(); }
  uint64_t total_preemptions() const { return preemptions_; }
  // The block tables of every live sequence and every session's pins (for
  // KvCacheManager::check_invariants).
  std::vector<std::span<const BlockId>> live_block_tables() const;
  // Sequences of every running and waiting sequence, in no particular order.
  std::vector<SequenceId> live_ids() const;

 private:
  struct Budget {
    int32_t tokens = 0;
    int32_t seqs = 0;
  };
  void end_expired(SteadyTime now, StepPlan& plan);
  void preempt_for_priority(StepPlan& plan);
  void schedule_running(Budget& budget, StepPlan& plan);
  void admit_waiting(Budget& budget, StepPlan& plan);
  // Gives `seq` blocks for `tokens` K/V slots, preempting sequences served after it (and
  // finally `seq` itself) when the pool is short. False when `seq` was preempted.
  bool grow_or_preempt(Sequence& seq, int32_t tokens, StepPlan& plan);
  bool try_grow(Sequence& seq, int32_t tokens);
  void preempt(Sequence& seq, StepPlan& plan);
  void add_chunk(Sequence& seq, int32_t count, StepPlan& plan);
  void insert_waiting(Sequence* seq);
  void finish(Sequence& seq, SequenceEnd end, SteadyTime now);
  void release_blocks(Sequence& seq);
  void commit_full_blocks(Sequence& seq);

  SchedulerConfig config_;
  KvCacheManager& kv_;
  SessionCache* sessions_;  // may be null
  int32_t block_size_;
  SteadyTime last_now_{};  // the latest schedule() time, for ends outside a step (cancel)
  uint64_t next_arrival_ = 0;
  uint64_t preemptions_ = 0;
  std::unordered_map<SequenceId, std::unique_ptr<Sequence>> sequences_;
  std::vector<Sequence*> waiting_;  // sorted by served_before
  std::vector<Sequence*> running_;  // sorted by served_before at each schedule()
};

// Fills the ForwardBatch arrays of `plan` from its chunks (called by schedule()).
void build_batch(const std::unordered_map<SequenceId, std::unique_ptr<Sequence>>& sequences,
                 int32_t block_size, StepPlan& plan);

}  // namespace autoglm
