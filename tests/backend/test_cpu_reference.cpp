// The CPU backend against transformers' fp32 truth for every fixture model, and the batching
// invariances the scheduler relies on: chunked prefill equals whole prefill, a sequence
// decodes the same alone or in a ragged batch of 8, and scattered KV blocks equal contiguous
// ones.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend_test_util.h"
#include "core/error.h"

namespace autoglm {
namespace {

using test::SeqStep;

constexpr int32_t kBlockSize = 4;     // small, so that every prompt spans several blocks
constexpr int32_t kPoolBlocks = 256;  // 1,024 tokens
constexpr double kRelTolerance = 1e-4;

class CpuReference : public ::testing::Test {
 protected:
  void SetUp() override {
    dirs_ = test::reference_model_dirs();
    if (dirs_.empty()) GTEST_SKIP() << "no fixture models under tests/fixtures/models";
  }
  std::vector<std::filesystem::path> dirs_;
};

// Greedy-decodes `steps` tokens for each sequence, all sequences in one batch per step.
std::vector<std::vector<int32_t>> greedy_batch(CpuBackend& be,
                                               const std::vector<std::vector<int32_t>>& prompts,
                                               int32_t first_block, int steps) {
  const int32_t vocab = be.vocab_size();
  std::vector<SeqStep> seqs;
  int32_t next_block = first_block;
  for (const auto& p : prompts) {
    seqs.push_back({p, 0, test::contiguous_blocks(p.size() + steps, kBlockSize, next_block)});
    next_block += seqs.back().blocks.size();
  }
  std::vector<std::vector<int32_t>> out(prompts.size());
  for (int step = 0; step < steps; ++step) {
    const std::vector<float> logits = test::run_step(be, seqs);
    size_t row = 0;
    for (size_t s = 0; s < seqs.size(); ++s) {
      row += seqs[s].ids.size();
      const int32_t next = test::argmax(logits.data() + (row - 1) * vocab, vocab);
      out[s].push_back(next);
      seqs[s].first_pos += static_cast<int32_t>(seqs[s].ids.size());
      seqs[s].ids = {next};
    }
  }
  return out;
}

TEST_F(CpuReference, LogitsMatchTransformersAtEveryPosition) {
  for (const auto& dir : dirs_) {
    test::ReferenceModel m = test::load_reference_model(dir);
    CpuBackend be(*m.model, KvPoolShape{kPoolBlocks, kBlockSize});
    for (const auto& p : m.prompts) {
      SCOPED_TRACE(m.name + "/" + p.name);
      const int32_t n = static_cast<int32_t>(p.ids.size());
      ASSERT_EQ(p.logits.size(), static_cast<size_t>(n) * m.vocab());
      const auto logits =
          test::run_step(be, {{p.ids, 0, test::contiguous_blocks(n, kBlockSize, 0)}});
      double worst = 0;
      for (int32_t t = 0; t < n; ++t) {
        const size_t off = static_cast<size_t>(t) * m.vocab();
        worst = std::max(worst,
                         test::max_rel_diff(logits.data() + off, p.logits.data() + off, m.vocab()));
      }
      EXPECT_LT(worst, kRelTolerance);
      RecordProperty(m.name + "." + p.name + ".max_rel_diff", std::to_string(worst));
    }
  }
}

TEST_F(CpuReference, GreedyContinuationIsIdentical) {
  for (const auto& dir : dirs_) {
    test::ReferenceModel m = test::load_reference_model(dir);
    CpuBackend be(*m.model, KvPoolShape{kPoolBlocks, kBlockSize});
    for (const auto& p : m.prompts) {
      SCOPED_TRACE(m.name + "/" + p.name);
      const auto got = greedy_batch(be, {p.ids}, 0, static_cast<int>(p.greedy.size()));
      EXPECT_EQ(got[0], p.greedy);
    }
  }
}

// Overlapped scheduling's backend contract: each step's tokens are the previous step's samples,
// named by row, and the step is queued before that one is collected.
TEST_F(CpuReference, PipelinedStepsFeedBackTheirSamples) {
  for (const auto& dir : dirs_) {
    test::ReferenceModel m = test::load_reference_model(dir);
    SCOPED_TRACE(m.name);
    std::vector<std::vector<int32_t>> prompts;
    for (const auto& p : m.prompts) prompts.push_back(p.ids);
    CpuBackend be(*m.model, KvPoolShape{kPoolBlocks, kBlockSize});
    const auto got = test::greedy_steps(be, prompts, 12, test::StepFeed::kSampleRowsPipelined);
    for (size_t i = 0; i < prompts.size(); ++i) {
      const std::vector<int32_t>& truth = m.prompts[i].greedy;
      EXPECT_EQ(got[i], std::vector<int32_t>(truth.begin(), truth.begin() + 12)) << i;
    }
  }
}

TEST(BackendSteps, QueueMisuseAndUnknownSampleRowsAreInternalErrors) {
  const auto dirs = test::reference_model_dirs();
  if (dirs.empty()) GTEST_SKIP() << "no fixture models";
  test::ReferenceModel m = test::load_reference_model(dirs.front());
  CpuBackend be(*m.model, KvPoolShape{kPoolBlocks, kBlockSize});
  std::vector<RowSample> one(1);
  EXPECT_THROW(be.collect_sample(one), Error);  // nothing queued
  const std::vector<RowSamplingParams> params(1);
  test::SeqStep seq{{previous_sample_token(0)}, 0, test::contiguous_blocks(8, kBlockSize, 0)};
  const ForwardBatchArrays first = test::make_batch(be, {seq});
  EXPECT_THROW(be.submit_sample(first.view(), SampleBatch{params, {}}), Error);  // no step before
  seq.ids = {m.prompts[0].ids[0]};
  const ForwardBatchArrays prompt = test::make_batch(be, {seq});
  be.submit_sample(prompt.view(), SampleBatch{params, {}});
  seq.first_pos = 1;
  seq.ids = {previous_sample_token(1)};  // that step had one row
  const ForwardBatchArrays bad_row = test::make_batch(be, {seq});
  EXPECT_THROW(be.submit_sample(bad_row.view(), SampleBatch{params, {}}), Error);
  seq.ids = {previous_sample_token(0)};
  const ForwardBatchArrays next = test::make_batch(be, {seq});
  be.submit_sample(next.view(), SampleBatch{params, {}});
  EXPECT_THROW(be.submit_sample(next.view(), SampleBatch{params, {}}), Error);  // two queued
  be.collect_sample(one);
  std::vector<RowSample> two(2);
  EXPECT_THROW(be.collect_sample(two), Error);  // the wrong row count: the step stays queued
  be.collect_sample(one);
  EXPECT_THROW(be.collect_sample(one), Error);
}

TEST_F(CpuReference, ChunkedPrefillEqualsWholePrefill) {
  for (const auto& dir : dirs_) {
    test::ReferenceModel m = test::load_reference_model(dir);
    CpuBackend be(*m.model, KvPoolShape{kPoolBlocks, kBlockSize});
    for (const auto& p : m.prompts) {
      const int32_t n = static_cast<int32_t>(p.ids.size());
      const auto blocks = test::contiguous_blocks(n, kBlockSize, 0);
      const auto whole = test::run_step(be, {{p.ids, 0, blocks}});
      for (int32_t chunk : {1, 7, 64}) {
        SCOPED_TRACE(m.name + "/" + p.name + " chunk " + std::to_string(chunk));
        std::vector<float> chunked;
        for (int32_t first = 0; first < n; first += chunk) {
          const int32_t len = std::min(chunk, n - first);
          const std::vector<int32_t> ids(p.ids.begin() + first, p.ids.begin() + first + len);
          const auto part = test::run_step(be, {{ids, first, blocks}});
          chunked.insert(chunked.end(), part.begin(), part.end());
        }
        ASSERT_EQ(chunked.size(), whole.size());
        EXPECT_LT(test::max_rel_diff(chunked.data(), whole.data(), whole.size()), kRelTolerance);
        for (int32_t t = 0; t < n; ++t) {
          EXPECT_EQ(test::argmax(chunked.data() + t * m.vocab(), m.vocab()),
                    test::argmax(whole.data() + t * m.vocab(), m.vocab()));
        }
      }
    }
  }
}

TEST_F(CpuReference, BatchOfEightDecodesLikeEachSequenceAlone) {
  for (const auto& dir : dirs_) {
    test::ReferenceModel m = test::load_reference_model(dir);
    SCOPED_TRACE(m.name);
    CpuBackend be(*m.model, KvPoolShape{kPoolBlocks, kBlockSize});
    std::vector<std::vector<int32_t>> prompts;
    for (const auto& p : m.prompts) prompts.push_back(p.ids);
    prompts.push_back({m.prompts[1].ids.begin(), m.prompts[1].ids.begin() + 3});
    ASSERT_EQ(prompts.size(), 8u);
    constexpr int kSteps = 12;
    const auto batched = greedy_batch(be, prompts, 0, kSteps);
    for (size_t s = 0; s < prompts.size(); ++s) {
      const auto alone = greedy_batch(be, {prompts[s]}, 0, kSteps);
      EXPECT_EQ(batched[s], alone[0]) << "sequence " << s;
    }
  }
}

TEST_F(CpuReference, ScatteredBlocksEqualContiguousBlocks) {
  for (const auto& dir : dirs_) {
    test::ReferenceModel m = test::load_reference_model(dir);
    CpuBackend be(*m.model, KvPoolShape{kPoolBlocks, kBlockSize});
    for (const auto& p : m.prompts) {
      SCOPED_TRACE(m.name + "/" + p.name);
      const int32_t n = static_cast<int32_t>(p.ids.size());
      const auto a = test::run_step(be, {{p.ids, 0, test::contiguous_blocks(n, kBlockSize, 0)}});
      const auto b =
          test::run_step(be, {{p.ids, 0, test::scattered_blocks(n, kBlockSize, 5, kPoolBlocks)}});
      EXPECT_EQ(test::max_abs_diff(a.data(), b.data(), a.size()), 0.0);
    }
  }
}

}  // namespace
}  // namespace autoglm
