// See scheduler.h. The order of one schedule(): end what has expired, serve the running
// sequences (decode tokens and unfinished prefills, preempting from the back when the pool is
// short), admit waiting sequences while budget and blocks last, then lay out the batch.
#include "runtime/scheduler.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace autoglm {
namespace {

bool by_service_order(const Sequence* a, const Sequence* b) {
  return served_before(*a, *b);
}

void check_output_rows(const StepPlan& plan, const StepOutput& output) {
  if (output.rows.size() != plan.logits_rows.size()) {
    fail(ErrorCode::kInternal, "scheduler: step output has " + std::to_string(output.rows.size()) +
                                   " rows for " + std::to_string(plan.logits_rows.size()) +
                                   " logits rows");
  }
}

}  // namespace

Scheduler::Scheduler(SchedulerConfig config, KvCacheManager& kv, SessionCache* sessions)
    : config_(config), kv_(kv), sessions_(sessions), block_size_(kv.config().block_size) {
  if (config_.max_num_seqs <= 0 || config_.max_batched_tokens <= 0) {
    fail(ErrorCode::kInvalidArgument, "scheduler: max_num_seqs and max_batched_tokens must be > 0");
  }
}

void Scheduler::add(SequenceRequest request) {
  if (request.prompt.empty()) fail(ErrorCode::kInvalidArgument, "the prompt has no tokens");
  const SequenceId id = request.id;
  auto seq = std::make_unique<Sequence>(std::move(request), next_arrival_++);
  Sequence* raw = seq.get();
  if (!sequences_.emplace(id, std::move(seq)).second) {
    fail(ErrorCode::kInternal, "scheduler: duplicate sequence id " + std::to_string(id));
  }
  if (sessions_ && !raw->request.session_key.empty())
    sessions_->begin_turn(raw->request.session_key);
  insert_waiting(raw);
}

bool Scheduler::cancel(SequenceId id) {
  const auto it = sequences_.find(id);
  if (it == sequences_.end()) return false;
  finish(*it->second, SequenceEnd::kCancelled, last_now_);
  return true;
}

const Sequence* Scheduler::find(SequenceId id) const {
  const auto it = sequences_.find(id);
  return it == sequences_.end() ? nullptr : it->second.get();
}

std::vector<std::span<const BlockId>> Scheduler::live_block_tables() const {
  std::vector<std::span<const BlockId>> tables;
  for (const auto& [id, seq] : sequences_) tables.emplace_back(seq->blocks);
  if (sessions_) {
    for (std::span<const BlockId> pins : sessions_->pinned_tables()) tables.push_back(pins);
  }
  return tables;
}

std::vector<SequenceId> Scheduler::live_ids() const {
  std::vector<SequenceId> ids;
  for (const auto& [id, seq] : sequences_) ids.push_back(id);
  return ids;
}

StepPlan Scheduler::schedule(SteadyTime now) {
  StepPlan plan;
  plan.time = now;
  last_now_ = now;
  if (sessions_) sessions_->expire(now);
  end_expired(now, plan);
  std::sort(running_.begin(), running_.end(), by_service_order);
  Budget budget{config_.max_batched_tokens, config_.max_num_seqs};
  preempt_for_priority(plan);
  const size_t priority_victims = plan.preempted.size();
  schedule_running(budget, plan);
  // Nothing is admitted in a step whose running sequences ran short of blocks, so a victim is
  // not immediately re-admitted in place of the sequence it made room for.
  if (plan.preempted.size() == priority_victims) admit_waiting(budget, plan);
  build_batch(sequences_, block_size_, plan);
  return plan;
}

void Scheduler::end_expired(SteadyTime now, StepPlan& plan) {
  std::vector<Sequence*> expired;
  for (const auto& [id, seq] : sequences_) {
    const SequenceRequest& r = seq->request;
    const bool past_deadline = r.deadline && now >= *r.deadline;
    const bool waited_too_long = !seq->started && r.queue_deadline && now >= *r.queue_deadline;
    if (past_deadline || waited_too_long) expired.push_back(seq.get());
  }
  for (Sequence* seq : expired) {
    plan.ended.push_back({seq->id(), SequenceEnd::kTimeout});
    finish(*seq, SequenceEnd::kTimeout, now);
  }
}

// Running sequences in service order: a decode token each, or the next chunk of an unfinished
// prefill. Decode tokens come first in the batch budget because running sequences are served
// before any waiting one is admitted.
void Scheduler::schedule_running(Budget& budget, StepPlan& plan) {
  for (size_t i = 0; i < running_.size();) {
    if (budget.tokens <= 0 || budget.seqs <= 0) break;
    Sequence& seq = *running_[i];
    const int32_t count = std::min(seq.uncomputed(), budget.tokens);
    if (!grow_or_preempt(seq, seq.num_computed + count, plan)) continue;  // seq left running_
    add_chunk(seq, count, plan);
    budget.tokens -= count;
    budget.seqs -= 1;
    ++i;
  }
}

// Waiting sequences in service order, strictly: if the head does not fit, nobody behind it
// jumps ahead (no starvation of long prompts). A sequence preempted in this step is not
// re-admitted in it.
void Scheduler::admit_waiting(Budget& budget, StepPlan& plan) {
  while (!waiting_.empty() && budget.tokens > 0 && budget.seqs > 0 &&
         static_cast<int32_t>(running_.size()) < config_.max_num_seqs) {
    Sequence& seq = *waiting_.front();
    if (std::find(plan.preempted.begin(), plan.preempted.end(), seq.id()) != plan.preempted.end()) {
      break;
    }
    // Not counted yet: a head that does not fit retries this lookup every step.
    const KvCacheManager::PrefixHit hit =
        kv_.acquire_prefix(seq.tokens, seq.request.tenant_salt, KvCacheManager::CountLookup::kNo);
    seq.blocks = hit.blocks;
    seq.num_computed = hit.tokens;
    seq.committed_blocks = static_cast<int32_t>(hit.blocks.size());
    const int32_t count = std::min(seq.uncomputed(), budget.tokens);
    bool grown = try_grow(seq, seq.num_computed + count);
    // Pinned sessions must not hold an idle pool hostage: with nothing running, nothing else
    // will free blocks for the head.
    while (!grown && running_.empty() && sessions_ && sessions_->release_one()) {
      grown = try_grow(seq, seq.num_computed + count);
    }
    if (!grown) {
      release_blocks(seq);
      break;
    }
    if (kv_.config().enable_prefix_caching) {
      kv_.record_prefix_lookup(seq.tokens.size(), static_cast<uint64_t>(hit.tokens));
    }
    waiting_.erase(waiting_.begin());
    running_.push_back(&seq);
    seq.status = SequenceStatus::kRunning;
    if (!seq.started) {
      seq.started = true;
      seq.cached_prompt_tokens = hit.tokens;
      plan.started.push_back(seq.id());
    }
    add_chunk(seq, count, plan);
    budget.tokens -= count;
    budget.seqs -= 1;
  }
}

// A waiting head of a higher priority class (lower number) that has no seat, or not enough
// blocks for its first chunk after the running sequences' growth this step, takes them from
// the running sequences of lower classes, the lowest class and newest first (served last):
// after the sessions' pins, which are only a cache. The estimate ignores a prefix-cache hit
// the head may get, so it can preempt one sequence more than needed; the victim's committed
// blocks stay in the prefix cache for its recompute.
void Scheduler::preempt_for_priority(StepPlan& plan) {
  if (waiting_.empty() || running_.empty()) return;
  const Sequence& head = *waiting_.front();
  auto blocks_for = [this](int64_t tokens) {
    return static_cast<int32_t>((tokens + block_size_ - 1) / block_size_);
  };
  const int32_t head_blocks = blocks_for(std::min(head.total_tokens(), config_.max_batched_tokens));
  while (!running_.empty()) {
    Sequence* victim = running_.back();
    if (victim->request.priority <= head.request.priority) return;
    int32_t running_growth = 0;
    for (const Sequence* seq : running_) {
      const int32_t next =
          seq->num_computed + std::min(seq->uncomputed(), config_.max_batched_tokens);
      running_growth += std::max(0, blocks_for(next) - static_cast<int32_t>(seq->blocks.size()));
    }
    const bool no_seat = static_cast<int32_t>(running_.size()) >= config_.max_num_seqs;
    const bool no_blocks = kv_.available_blocks() - running_growth < head_blocks;
    if (!no_seat && !no_blocks) return;
    if (!no_seat && sessions_ && sessions_->release_one()) continue;
    preempt(*victim, plan);
  }
}

bool Scheduler::grow_or_preempt(Sequence& seq, int32_t tokens, StepPlan& plan) {
  while (!try_grow(seq, tokens)) {
    // A session's pins are a cache for the future; a running sequence is work now.
    if (sessions_ && sessions_->release_one()) continue;
    Sequence* victim = running_.back();  // served last
    preempt(*victim, plan);
    if (victim == &seq) return false;
  }
  return true;
}

bool Scheduler::try_grow(Sequence& seq, int32_t tokens) {
  const int32_t needed = (tokens + block_size_ - 1) / block_size_;
  const int32_t missing = needed - static_cast<int32_t>(seq.blocks.size());
  if (missing <= 0) return true;
  std::optional<std::vector<BlockId>> fresh = kv_.allocate(missing);
  if (!fresh) return false;
  seq.blocks.insert(seq.blocks.end(), fresh->begin(), fresh->end());
  return true;
}

void Scheduler::preempt(Sequence& seq, StepPlan& plan) {
  release_blocks(seq);
  std::erase(running_, &seq);
  seq.status = SequenceStatus::kWaiting;
  seq.preemptions += 1;
  preemptions_ += 1;
  plan.preempted.push_back(seq.id());
  insert_waiting(&seq);
}

void Scheduler::add_chunk(Sequence& seq, int32_t count, StepPlan& plan) {
  ScheduledChunk chunk;
  chunk.id = seq.id();
  chunk.start = seq.num_computed;
  chunk.count = count;
  chunk.wants_logits = seq.num_computed + count == seq.total_tokens();
  chunk.is_decode = seq.is_decoding();
  (chunk.is_decode ? plan.num_decode_tokens : plan.num_prefill_tokens) += count;
  plan.chunks.push_back(chunk);
}

void Scheduler::insert_waiting(Sequence* seq) {
  seq->status = SequenceStatus::kWaiting;
  waiting_.insert(std::upper_bound(waiting_.begin(), waiting_.end(), seq, by_service_order), seq);
}

void Scheduler::release_blocks(Sequence& seq) {
  // Tail first, so that the LRU evicts a prefix's last blocks before its first ones.
  std::reverse(seq.blocks.begin(), seq.blocks.end());
  kv_.release(seq.blocks);
  seq.blocks.clear();
  seq.num_computed = 0;
  seq.committed_blocks = 0;
}

void Scheduler::commit_full_blocks(Sequence& seq) {
  while ((seq.committed_blocks + 1) * block_size_ <= seq.num_computed) {
    kv_.commit_full_block(seq.tokens, seq.committed_blocks, seq.blocks, seq.request.tenant_salt);
    seq.committed_blocks += 1;
  }
}

void Scheduler::finish(Sequence& seq, SequenceEnd end, SteadyTime now) {
  if (sessions_ && !seq.request.session_key.empty()) {
    // Only the committed full blocks: the newest token (just sampled) has no K/V yet, and a
    // partial block cannot be found by a prefix lookup.
    const size_t computed = std::min(seq.blocks.size(), static_cast<size_t>(seq.committed_blocks));
    const bool completed = end == SequenceEnd::kStop || end == SequenceEnd::kLength;
    sessions_->end_turn(seq.request.session_key, std::span(seq.blocks).first(computed), completed,
                        now);
  }
  release_blocks(seq);
  std::erase(waiting_, &seq);
  std::erase(running_, &seq);
  seq.status = SequenceStatus::kFinished;
  seq.end = end;
  sequences_.erase(seq.id());  // destroys seq
}

std::vector<SequenceEnded> Scheduler::advance(const StepPlan& plan) {
  std::vector<SequenceEnded> ended;
  int32_t row = 0;
  for (const ScheduledChunk& chunk : plan.chunks) {
    const int32_t logits_row = chunk.wants_logits ? row++ : -1;
    const auto it = sequences_.find(chunk.id);
    if (it == sequences_.end()) continue;  // ended since the plan was made
    Sequence& seq = *it->second;
    if (seq.num_computed != chunk.start ||
        (logits_row >= 0 && seq.total_tokens() != chunk.start + chunk.count)) {
      fail(ErrorCode::kInternal, "scheduler: plan does not match sequence " +
                                     std::to_string(chunk.id) + " (stale plan?)");
    }
    seq.num_computed += chunk.count;
    commit_full_blocks(seq);
    if (logits_row < 0) continue;
    seq.tokens.push_back(previous_sample_token(logits_row));
    if (seq.generated() >= seq.request.max_tokens) {
      ended.push_back({chunk.id, SequenceEnd::kLength});
      finish(seq, SequenceEnd::kLength, plan.time);
    }
  }
  return ended;
}

std::vector<SequenceEnded> Scheduler::resolve(const StepPlan& plan, const StepOutput& output) {
  check_output_rows(plan, output);
  std::vector<SequenceEnded> ended;
  int32_t row = 0;
  for (const ScheduledChunk& chunk : plan.chunks) {
    if (!chunk.wants_logits) continue;
    const SampledRow& sampled = output.rows[static_cast<size_t>(row)];
    const int32_t placeholder = previous_sample_token(row++);
    const auto it = sequences_.find(chunk.id);
    if (it == sequences_.end()) continue;  // ended since the plan was made
    Sequence& seq = *it->second;
    const size_t at = static_cast<size_t>(chunk.start + chunk.count);
    if (at >= seq.tokens.size() || seq.tokens[at] != placeholder) {
      fail(ErrorCode::kInternal, "scheduler: sequence " + std::to_string(chunk.id) +
                                     " has no placeholder for its sampled token");
    }
    seq.tokens[at] = sampled.token;
    if (sampled.end != SequenceEnd::kNone) {
      ended.push_back({chunk.id, sampled.end});
      finish(seq, sampled.end, plan.time);
    }
  }
  return ended;
}

std::vector<SequenceEnded> Scheduler::update(const StepPlan& plan, const StepOutput& output) {
  check_output_rows(plan, output);
  std::vector<SequenceEnded> ended = advance(plan);
  // A row that ends by its own rule (a stop token) reports that, even when advance() has
  // already ended its sequence for length.
  for (SequenceEnded& e : ended) {
    for (size_t r = 0; r < plan.logits_owner.size() && r < output.rows.size(); ++r) {
      if (plan.logits_owner[r] == e.id && output.rows[r].end != SequenceEnd::kNone) {
        e.end = output.rows[r].end;
      }
    }
  }
  std::vector<SequenceEnded> resolved = resolve(plan, output);
  ended.insert(ended.end(), resolved.begin(), resolved.end());
  return ended;
}

void build_batch(const std::unordered_map<SequenceId, std::unique_ptr<Sequence>>& sequences,
                 int32_t block_size, StepPlan& plan) {
  for (const ScheduledChunk& chunk : plan.chunks) {
    const int32_t blocks = static_cast<int32_t>(sequences.at(chunk.id)->blocks.size());
    plan.max_blocks_per_seq = std::max(plan.max_blocks_per_seq, blocks);
  }
  plan.seq_start.push_back(0);
  for (const ScheduledChunk& chunk : plan.chunks) {
    const Sequence& seq = *sequences.at(chunk.id);
    for (int32_t pos = chunk.start; pos < chunk.start + chunk.count; ++pos) {
      plan.token_ids.push_back(seq.tokens[pos]);
      plan.positions.push_back(pos);
      plan.slot_mapping.push_back(seq.blocks[pos / block_size] * block_size + pos % block_size);
    }
    plan.seq_start.push_back(static_cast<int32_t>(plan.token_ids.size()));
    plan.context_len.push_back(chunk.start + chunk.count);
    plan.block_table.insert(plan.block_table.end(), seq.blocks.begin(), seq.blocks.end());
    plan.block_table.resize(plan.context_len.size() * plan.max_blocks_per_seq, 0);
    if (chunk.wants_logits) {
      plan.logits_rows.push_back(static_cast<int32_t>(plan.token_ids.size()) - 1);
      plan.logits_owner.push_back(chunk.id);
    }
  }
}

}  // namespace autoglm
