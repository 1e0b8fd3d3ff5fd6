// The scheduler on plain data (fake token ids, the real KV cache manager, no model): token and
// sequence budgets, decode before prefill, chunked prefill, FCFS and priority classes, prefix
// reuse, preemption and recompute, deadlines and cancellation. The pool invariants are checked
// after every step.
// Thread ownership: test thread only.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <vector>

#include "core/error.h"
#include "runtime/kv_cache.h"
#include "runtime/scheduler.h"

namespace autoglm {
namespace {

using std::chrono::milliseconds;

std::vector<int32_t> prompt_of(int32_t length, int32_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(length));
  for (int32_t i = 0; i < length; ++i) ids[static_cast<size_t>(i)] = (seed * 37 + i * 11) % 997;
  return ids;
}

// The "model": the next token is a pure function of the sequence and its length, so a
// recomputed sequence must produce exactly what it would have without preemption.
int32_t fake_next_token(SequenceId id, int32_t length) {
  return static_cast<int32_t>((id * 131 + length * 7) % 1000);
}

SequenceRequest request(SequenceId id, std::vector<int32_t> prompt, int32_t max_tokens,
                        int32_t priority = 0) {
  SequenceRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.priority = priority;
  return r;
}

struct Harness {
  Harness(int32_t num_blocks, int32_t block_size, SchedulerConfig config, bool prefix = true)
      : kv(KvCacheConfig{num_blocks, block_size, prefix, "test-model"}), scheduler(config, kv) {}

  void add(SequenceId id, int32_t prompt_len, int32_t max_tokens, int32_t priority = 0) {
    scheduler.add(
        request(id, prompt_of(prompt_len, static_cast<int32_t>(id)), max_tokens, priority));
  }

  // One step: schedule, answer every logits row with the fake model, update.
  StepPlan step(SteadyTime when = SteadyTime{}) {
    StepPlan plan = scheduler.schedule(when);
    const StepOutput out = answer(plan);
    for (const SequenceEnded& e : plan.ended) ends[e.id] = e.end;
    for (const SequenceEnded& e : scheduler.update(plan, out)) ends[e.id] = e.end;
    kv.check_invariants(scheduler.live_block_tables());
    return plan;
  }

  // The fake model's token for every logits row: a function of the sequence and the length
  // its chunk ends at.
  StepOutput answer(const StepPlan& plan) {
    StepOutput out;
    for (const ScheduledChunk& c : plan.chunks) {
      if (!c.wants_logits) continue;
      const int32_t token = fake_next_token(c.id, c.start + c.count);
      out.rows.push_back({token, SequenceEnd::kNone});
      outputs[c.id].push_back(token);
    }
    return out;
  }

  // Runs to idle as the engine does with overlapped scheduling: step N + 1 is scheduled (and
  // answered) before step N's samples are resolved. Checks that every fed-back token is the
  // placeholder of its sequence's row in the step before, and that no placeholder is ever
  // counted as computed (it would reach the prefix cache). Returns the placeholders fed.
  int run_overlapped() {
    std::optional<std::pair<StepPlan, StepOutput>> in_flight;
    int fed_back = 0, steps = 0;
    while ((!scheduler.idle() || in_flight) && ++steps < 10000) {
      StepPlan plan = scheduler.schedule(SteadyTime{});
      for (const SequenceEnded& e : plan.ended) ends[e.id] = e.end;
      for (size_t c = 0; c < plan.chunks.size(); ++c) {
        for (int32_t t = plan.seq_start[c]; t < plan.seq_start[c + 1]; ++t) {
          if (plan.token_ids[static_cast<size_t>(t)] >= 0) continue;
          ++fed_back;
          EXPECT_TRUE(in_flight.has_value());
          if (!in_flight) continue;
          const std::vector<SequenceId>& owners = in_flight->first.logits_owner;
          const auto row = std::find(owners.begin(), owners.end(), plan.chunks[c].id);
          EXPECT_NE(row, owners.end()) << "a placeholder without a row in the step in flight";
          if (row == owners.end()) continue;
          EXPECT_EQ(plan.token_ids[static_cast<size_t>(t)],
                    previous_sample_token(static_cast<int32_t>(row - owners.begin())));
        }
      }
      const StepOutput out = answer(plan);
      if (in_flight) {
        for (const SequenceEnded& e : scheduler.resolve(in_flight->first, in_flight->second)) {
          ends[e.id] = e.end;
        }
      }
      for (const SequenceEnded& e : scheduler.advance(plan)) ends[e.id] = e.end;
      for (const SequenceId id : scheduler.live_ids()) {
        const Sequence& seq = *scheduler.find(id);
        for (int32_t i = 0; i < seq.num_computed; ++i) {
          EXPECT_GE(seq.tokens[static_cast<size_t>(i)], 0) << "placeholder computed, seq " << id;
        }
      }
      kv.check_invariants(scheduler.live_block_tables());
      if (plan.empty()) {
        in_flight.reset();
      } else {
        in_flight.emplace(std::move(plan), out);
      }
    }
    EXPECT_LT(steps, 10000) << "no progress";
    return fed_back;
  }

  KvCacheManager kv;
  Scheduler scheduler;
  std::map<SequenceId, std::vector<int32_t>> outputs;  // every token sampled, per sequence
  std::map<SequenceId, SequenceEnd> ends;
};

// What a sequence generates with no other sequence and no preemption.
std::vector<int32_t> expected_output(SequenceId id, int32_t prompt_len, int32_t max_tokens) {
  std::vector<int32_t> out;
  for (int32_t i = 0; i < max_tokens; ++i) out.push_back(fake_next_token(id, prompt_len + i));
  return out;
}

TEST(Scheduler, ChunkedPrefillThenDecodeWithinTheTokenBudget) {
  Harness h(64, 4, {.max_num_seqs = 8, .max_batched_tokens = 8});
  h.add(1, 10, 3);
  StepPlan p = h.step();
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(p.chunks[0].count, 8);
  EXPECT_FALSE(p.chunks[0].wants_logits);
  EXPECT_TRUE(p.logits_rows.empty());
  p = h.step();
  EXPECT_EQ(p.chunks[0].start, 8);
  EXPECT_EQ(p.chunks[0].count, 2);
  ASSERT_EQ(p.logits_rows, std::vector<int32_t>{1});
  EXPECT_EQ(p.context_len, std::vector<int32_t>{10});
  EXPECT_EQ(p.positions, (std::vector<int32_t>{8, 9}));

  // A decode token is served before a new prompt takes the rest of the budget.
  h.add(2, 20, 2);
  p = h.step();
  ASSERT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(p.chunks[0].id, 1);
  EXPECT_TRUE(p.chunks[0].is_decode);
  EXPECT_EQ(p.chunks[1].id, 2);
  EXPECT_EQ(p.chunks[1].count, 7);
  EXPECT_EQ(p.num_decode_tokens, 1);
  EXPECT_EQ(p.num_prefill_tokens, 7);
  EXPECT_EQ(p.token_ids.size(), 8u);
  const ForwardBatch b = p.batch();
  EXPECT_EQ(b.n_seqs(), 2);
  EXPECT_EQ(b.seq_start[2], 8);
  // Slots address the sequence's own blocks.
  const Sequence* two = h.scheduler.find(2);
  for (int32_t t = 1; t < 8; ++t) {
    const int32_t pos = t - 1;
    EXPECT_EQ(b.slot_mapping[t], two->blocks[pos / 4] * 4 + pos % 4);
  }
}

TEST(Scheduler, MaxNumSeqsBoundsTheBatchAndTheRunningSet) {
  Harness h(64, 4, {.max_num_seqs = 2, .max_batched_tokens = 100});
  for (SequenceId id = 1; id <= 3; ++id) h.add(id, 5, 4);
  StepPlan p = h.step();
  EXPECT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(h.scheduler.num_running(), 2);
  EXPECT_EQ(h.scheduler.num_waiting(), 1);
  while (!h.scheduler.idle()) {
    p = h.step();
    EXPECT_LE(p.chunks.size(), 2u);
    EXPECT_LE(h.scheduler.num_running(), 2);
  }
  for (SequenceId id = 1; id <= 3; ++id) {
    EXPECT_EQ(h.outputs[id], expected_output(id, 5, 4)) << id;
    EXPECT_EQ(h.ends[id], SequenceEnd::kLength);
  }
  EXPECT_EQ(h.kv.stats().used_blocks, 0);
}

TEST(Scheduler, FcfsWithinAPriorityClassLowerClassFirst) {
  // Budget for one prompt per step: the order prompts start in is the service order.
  Harness h(64, 4, {.max_num_seqs = 8, .max_batched_tokens = 6});
  h.add(1, 6, 1, /*priority=*/1);
  h.add(2, 6, 1, /*priority=*/0);
  h.add(3, 6, 1, /*priority=*/1);
  h.add(4, 6, 1, /*priority=*/0);
  std::vector<SequenceId> order;
  while (!h.scheduler.idle()) {
    for (SequenceId id : h.step().started) order.push_back(id);
  }
  EXPECT_EQ(order, (std::vector<SequenceId>{2, 4, 1, 3}));
}

TEST(Scheduler, HeadOfQueueThatDoesNotFitIsNotOvertaken) {
  // 4 blocks of 4: sequence 1 holds 3 blocks, sequence 2 needs 3, sequence 3 needs 1.
  Harness h(4, 4, {.max_num_seqs = 8, .max_batched_tokens = 64});
  h.add(1, 11, 1);
  h.add(2, 11, 1);
  h.add(3, 2, 1);
  const StepPlan p = h.step();
  ASSERT_EQ(p.started, std::vector<SequenceId>{1});
  EXPECT_EQ(h.scheduler.num_waiting(), 2);
  while (!h.scheduler.idle()) h.step();
  EXPECT_EQ(h.outputs.size(), 3u);
}

TEST(Scheduler, ReusesTheCachedPrefixAndSkipsItsPrefill) {
  Harness h(64, 4, {.max_num_seqs = 8, .max_batched_tokens = 64});
  SequenceRequest a = request(1, prompt_of(10, 5), 2);
  SequenceRequest b = a;
  b.id = 2;
  SequenceRequest salted = a;
  salted.id = 3;
  salted.tenant_salt = "other-tenant";
  h.scheduler.add(a);
  while (!h.scheduler.idle()) h.step();
  h.scheduler.add(b);
  h.scheduler.add(salted);
  const StepPlan p = h.step();
  ASSERT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(p.chunks[0].start, 8);  // two full blocks of the prompt came from the cache
  EXPECT_EQ(p.chunks[0].count, 2);
  EXPECT_EQ(h.scheduler.find(2)->cached_prompt_tokens, 8);
  EXPECT_EQ(p.chunks[1].start, 0);  // another tenant never shares
  EXPECT_EQ(h.scheduler.find(3)->cached_prompt_tokens, 0);
}

TEST(Scheduler, PrefixCachingOffRecomputesEverything) {
  Harness h(64, 4, {.max_num_seqs = 8, .max_batched_tokens = 64}, /*prefix=*/false);
  h.scheduler.add(request(1, prompt_of(10, 5), 2));
  while (!h.scheduler.idle()) h.step();
  h.scheduler.add(request(2, prompt_of(10, 5), 2));
  EXPECT_EQ(h.step().chunks[0].start, 0);
}

TEST(Scheduler, PreemptsTheNewestAndRecomputesItIdentically) {
  // 4 blocks of 4 tokens; two sequences of 6 + 6 tokens need 3 blocks each by the end.
  Harness h(4, 4, {.max_num_seqs = 8, .max_batched_tokens = 64}, /*prefix=*/false);
  h.add(1, 6, 6);
  h.add(2, 6, 6);
  std::vector<SequenceId> preempted;
  bool recomputed_with_generated = false;
  while (!h.scheduler.idle()) {
    const StepPlan p = h.step();
    preempted.insert(preempted.end(), p.preempted.begin(), p.preempted.end());
    for (const ScheduledChunk& c : p.chunks) {
      if (c.id == 2 && !preempted.empty() && c.start == 0 && c.count > 6) {
        recomputed_with_generated = true;  // prompt + generated tokens fed again
      }
    }
  }
  EXPECT_EQ(preempted, std::vector<SequenceId>{2});
  EXPECT_EQ(h.scheduler.total_preemptions(), 1u);
  EXPECT_TRUE(recomputed_with_generated);
  EXPECT_EQ(h.outputs[1], expected_output(1, 6, 6));
  EXPECT_EQ(h.outputs[2], expected_output(2, 6, 6));
  EXPECT_EQ(h.kv.stats().used_blocks, 0);
}

TEST(Scheduler, PriorityDecidesTheVictim) {
  Harness h(4, 4, {.max_num_seqs = 8, .max_batched_tokens = 64}, /*prefix=*/false);
  h.add(1, 6, 6, /*priority=*/5);  // older, but in a lower class
  h.add(2, 6, 6, /*priority=*/0);
  std::vector<SequenceId> preempted;
  while (!h.scheduler.idle()) {
    const StepPlan p = h.step();
    preempted.insert(preempted.end(), p.preempted.begin(), p.preempted.end());
  }
  ASSERT_FALSE(preempted.empty());
  EXPECT_EQ(preempted.front(), 1);
  EXPECT_EQ(h.outputs[1], expected_output(1, 6, 6));
  EXPECT_EQ(h.outputs[2], expected_output(2, 6, 6));
}

TEST(Scheduler, DeadlinesEndWaitingAndRunningSequencesWithTimeout) {
  Harness h(64, 4, {.max_num_seqs = 1, .max_batched_tokens = 64});
  const SteadyTime t0{};
  SequenceRequest one = request(1, prompt_of(5, 1), 100);
  one.deadline = t0 + milliseconds(30);
  SequenceRequest two = request(2, prompt_of(5, 2), 2);
  two.queue_deadline = t0 + milliseconds(10);
  SequenceRequest three = request(3, prompt_of(5, 3), 2);
  three.queue_deadline = t0 + milliseconds(100);
  h.scheduler.add(one);
  h.scheduler.add(two);
  h.scheduler.add(three);
  h.step(t0);  // 1 runs; 2 and 3 wait behind max_num_seqs = 1
  h.step(t0 + milliseconds(10));
  EXPECT_EQ(h.ends.at(2), SequenceEnd::kTimeout);
  EXPECT_FALSE(h.ends.contains(1));
  const StepPlan p = h.step(t0 + milliseconds(30));
  EXPECT_EQ(h.ends.at(1), SequenceEnd::kTimeout);
  EXPECT_EQ(p.started, std::vector<SequenceId>{3});  // its queue deadline does not apply now
  while (!h.scheduler.idle()) h.step(t0 + milliseconds(200));
  EXPECT_EQ(h.ends.at(3), SequenceEnd::kLength);
  EXPECT_EQ(h.kv.stats().used_blocks, 0);
}

TEST(Scheduler, CancelFreesBlocksAtOnce) {
  Harness h(64, 4, {.max_num_seqs = 8, .max_batched_tokens = 64});
  h.add(1, 10, 50);
  h.add(2, 10, 50);
  h.step();
  h.step();
  EXPECT_GT(h.kv.stats().used_blocks, 0);
  EXPECT_TRUE(h.scheduler.cancel(1));
  EXPECT_TRUE(h.scheduler.cancel(2));
  EXPECT_FALSE(h.scheduler.cancel(2));
  EXPECT_EQ(h.kv.stats().used_blocks, 0);
  EXPECT_TRUE(h.scheduler.idle());
  EXPECT_TRUE(h.step().empty());
}

TEST(Scheduler, StopFromTheEngineEndsTheSequence) {
  Harness h(64, 4, {.max_num_seqs = 8, .max_batched_tokens = 64});
  h.add(1, 4, 50);
  StepPlan p = h.scheduler.schedule(SteadyTime{});
  StepOutput out;
  out.rows.push_back({7, SequenceEnd::kStop});
  const auto ended = h.scheduler.update(p, out);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].end, SequenceEnd::kStop);
  EXPECT_TRUE(h.scheduler.idle());
  EXPECT_EQ(h.kv.stats().used_blocks, 0);
}

TEST(Scheduler, HigherPriorityWaitingPreemptsTheLowestNewestForASeat) {
  Harness h(64, 4, {.max_num_seqs = 2, .max_batched_tokens = 64});
  h.add(1, 5, 8, /*priority=*/5);
  h.add(2, 5, 8, /*priority=*/3);
  h.step();
  h.step();
  h.add(3, 5, 4, /*priority=*/0);
  const StepPlan p = h.step();
  EXPECT_EQ(p.preempted, std::vector<SequenceId>{1});  // the lowest class, though the oldest
  EXPECT_EQ(p.started, std::vector<SequenceId>{3});
  EXPECT_EQ(h.scheduler.num_running(), 2);
  while (!h.scheduler.idle()) h.step();
  for (SequenceId id : {1, 2}) EXPECT_EQ(h.outputs[id], expected_output(id, 5, 8)) << id;
  EXPECT_EQ(h.outputs[3], expected_output(3, 5, 4));
}

TEST(Scheduler, HigherPriorityWaitingPreemptsForBlocks) {
  // 8 blocks of 4: sequence 1 holds 6 of them; sequence 2 needs 3 for its prompt.
  Harness h(8, 4, {.max_num_seqs = 8, .max_batched_tokens = 64}, /*prefix=*/false);
  h.add(1, 22, 4, /*priority=*/1);
  h.step();
  h.add(2, 10, 2, /*priority=*/0);
  const StepPlan p = h.step();
  EXPECT_EQ(p.preempted, std::vector<SequenceId>{1});
  EXPECT_EQ(p.started, std::vector<SequenceId>{2});
  while (!h.scheduler.idle()) h.step();
  EXPECT_EQ(h.outputs[1], expected_output(1, 22, 4));
  EXPECT_EQ(h.outputs[2], expected_output(2, 10, 2));
  EXPECT_EQ(h.scheduler.total_preemptions(), 1u);
}

TEST(Scheduler, TheSameOrALowerClassWaitsInsteadOfPreempting) {
  for (const int32_t newcomer : {1, 2}) {
    Harness h(64, 4, {.max_num_seqs = 1, .max_batched_tokens = 64});
    h.add(1, 5, 4, /*priority=*/1);
    h.step();
    h.add(2, 5, 4, newcomer);
    while (!h.scheduler.idle()) EXPECT_TRUE(h.step().preempted.empty());
    EXPECT_EQ(h.scheduler.total_preemptions(), 0u);
  }
}

TEST(Scheduler, ABlockedHeadCountsOnePrefixLookupWhenAdmitted) {
  // 8 blocks of 4. Sequence 9 leaves 3 cached blocks; sequence 1 then holds the other 5 for
  // four steps; sequence 2 (those 3 cached blocks + 8 tokens: 5 blocks) cannot start until
  // sequence 1 ends, and retries its lookup every step meanwhile.
  Harness h(8, 4, {.max_num_seqs = 8, .max_batched_tokens = 64});
  std::vector<int32_t> shared = prompt_of(12, 9);
  h.scheduler.add(request(9, shared, 1));
  while (!h.scheduler.idle()) h.step();
  const KvCacheStats before = h.kv.stats();
  EXPECT_EQ(before.prefix_queries, 12u);
  h.add(1, 17, 4);
  h.step();
  const std::vector<int32_t> tail = prompt_of(8, 77);
  shared.insert(shared.end(), tail.begin(), tail.end());
  h.scheduler.add(request(2, shared, 1));
  int32_t blocked_steps = 0;
  while (h.step().started != std::vector<SequenceId>{2}) {
    ASSERT_LT(++blocked_steps, 100) << "sequence 2 never started";
  }
  EXPECT_GT(blocked_steps, 2);
  const KvCacheStats after = h.kv.stats();
  EXPECT_EQ(after.prefix_queries - before.prefix_queries, 17u + 20u);  // once each
  EXPECT_EQ(after.prefix_hits - before.prefix_hits, 12u);
}

// Many sequences of mixed lengths through a small pool and tight budgets: every plan respects
// the budgets, puts decode tokens first, and every sequence produces exactly its solo output.
TEST(Scheduler, RandomWorkloadKeepsBudgetsAndOutputs) {
  for (const bool prefix : {true, false}) {
    Harness h(24, 4, {.max_num_seqs = 6, .max_batched_tokens = 16}, prefix);
    std::mt19937 rng(42);
    std::map<SequenceId, std::pair<int32_t, int32_t>> shape;
    for (SequenceId id = 1; id <= 40; ++id) {
      const int32_t len = 1 + static_cast<int32_t>(rng() % 30);
      const int32_t max_tokens = 1 + static_cast<int32_t>(rng() % 20);
      h.scheduler.add(request(id, prompt_of(len, static_cast<int32_t>(id % 3)), max_tokens,
                              static_cast<int32_t>(rng() % 2)));
      shape[id] = {len, max_tokens};
    }
    int steps = 0;
    while (!h.scheduler.idle()) {
      ASSERT_LT(++steps, 10000) << "no progress";
      const StepPlan p = h.step();
      EXPECT_LE(p.token_ids.size(), 16u);
      EXPECT_LE(p.chunks.size(), 6u);
      bool seen_prefill = false;
      for (const ScheduledChunk& c : p.chunks) {
        if (!c.is_decode) seen_prefill = true;
        if (c.is_decode) {
          EXPECT_FALSE(seen_prefill) << "decode after prefill";
        }
      }
    }
    for (const auto& [id, s] : shape) {
      // Sequences share prompts (seed id % 3) but the fake model keys on the id.
      EXPECT_EQ(h.outputs[id], expected_output(id, s.first, s.second)) << id;
    }
    EXPECT_EQ(h.kv.stats().used_blocks, 0);
    if (prefix) {
      EXPECT_GT(h.kv.stats().prefix_hits, 0u);
    }
  }
}

TEST(Scheduler, OverlappedStepsFeedBackPlaceholdersAndGiveTheSameOutputs) {
  // The random workload, and a pool small enough to preempt sequences whose sample is still in
  // flight (their placeholder must be resolved before they are recomputed).
  for (const bool prefix : {true, false}) {
    for (const int32_t blocks : {24, 8}) {
      Harness h(blocks, 4, {.max_num_seqs = 6, .max_batched_tokens = 16}, prefix);
      std::mt19937 rng(7);
      std::map<SequenceId, std::pair<int32_t, int32_t>> shape;
      for (SequenceId id = 1; id <= 40; ++id) {
        const int32_t len = 1 + static_cast<int32_t>(rng() % (blocks == 8 ? 12 : 30));
        const int32_t max_tokens = 1 + static_cast<int32_t>(rng() % (blocks == 8 ? 12 : 20));
        h.scheduler.add(request(id, prompt_of(len, static_cast<int32_t>(id % 3)), max_tokens));
        shape[id] = {len, max_tokens};
      }
      EXPECT_GT(h.run_overlapped(), 0);
      for (const auto& [id, s] : shape) {
        EXPECT_EQ(h.outputs[id], expected_output(id, s.first, s.second)) << id;
        EXPECT_EQ(h.ends[id], SequenceEnd::kLength) << id;
      }
      EXPECT_EQ(h.kv.stats().used_blocks, 0);
      if (blocks == 8) {
        EXPECT_GT(h.scheduler.total_preemptions(), 0u);
      }
    }
  }
}

TEST(Scheduler, AdvanceEndsAtMaxTokensBeforeTheTokenIsKnown) {
  Harness h(16, 4, {.max_num_seqs = 4, .max_batched_tokens = 64});
  h.add(1, 5, 1);
  h.add(2, 5, 3);
  const StepPlan first = h.scheduler.schedule(SteadyTime{});
  const StepOutput out = h.answer(first);
  const std::vector<SequenceEnded> ended = h.scheduler.advance(first);
  ASSERT_EQ(ended.size(), 1u);  // sequence 1 is done whatever its token turns out to be
  EXPECT_EQ(ended[0].id, 1);
  EXPECT_EQ(ended[0].end, SequenceEnd::kLength);
  EXPECT_EQ(h.scheduler.find(1), nullptr);
  EXPECT_EQ(h.scheduler.find(2)->tokens.back(), previous_sample_token(1));
  const StepPlan second = h.scheduler.schedule(SteadyTime{});  // feeds sequence 2's placeholder
  ASSERT_EQ(second.token_ids.size(), 1u);
  EXPECT_EQ(second.token_ids[0], previous_sample_token(1));
  EXPECT_TRUE(h.scheduler.resolve(first, out).empty());  // sequence 1 is skipped
  EXPECT_EQ(h.scheduler.find(2)->tokens.back(), out.rows[1].token);
  EXPECT_THROW(h.scheduler.resolve(first, out), Error);  // nothing left to resolve
  h.scheduler.advance(second);
  h.kv.check_invariants(h.scheduler.live_block_tables());
}

}  // namespace
}  // namespace autoglm
