// Decode steps replayed from CUDA graphs (backend/cuda/decode_graphs.h) against the same steps
// launched kernel by kernel, on every fixture model: batches padded to each bucket shape (1, 3
// of 4, 5 of 8), contexts crossing the 256-token context bucket, sampling with logprobs and
// penalties; the bucket functions themselves run without a GPU. Skipped, with a message, when
// no GPU is present. Thread ownership: the test main thread only.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/decode_graphs.h"
#include "backend_test_util.h"
#include "cuda_test_util.h"
#include "fixture_models_test.h"

namespace autoglm {
namespace {

using autoglm::test::SeqStep;

TEST(DecodeGraphBuckets, PadToFewShapes) {
  EXPECT_EQ(cuda::decode_batch_bucket(1, 256), 1);
  EXPECT_EQ(cuda::decode_batch_bucket(3, 256), 4);
  EXPECT_EQ(cuda::decode_batch_bucket(5, 256), 8);
  EXPECT_EQ(cuda::decode_batch_bucket(9, 256), 16);
  EXPECT_EQ(cuda::decode_batch_bucket(64, 256), 64);
  EXPECT_EQ(cuda::decode_batch_bucket(65, 256), 96);
  EXPECT_EQ(cuda::decode_batch_bucket(250, 256), 256);
  EXPECT_EQ(cuda::decode_batch_bucket(65, 70), 70);  // never above the step's limit
  EXPECT_EQ(cuda::decode_context_bucket(1, 4096), 256);
  EXPECT_EQ(cuda::decode_context_bucket(257, 4096), 512);
  EXPECT_EQ(cuda::decode_context_bucket(3000, 4096), 4096);
  EXPECT_EQ(cuda::decode_context_bucket(3000, 3500), 3500);
}

constexpr int32_t kBlockSize = 16;

CudaBackendOptions graph_test_options(bool graphs) {
  CudaBackendOptions o;
  o.block_size = kBlockSize;
  o.num_kv_blocks = 256;
  o.max_num_seqs = 16;
  o.max_batched_tokens = 256;
  o.max_logits_rows = 16;
  o.max_context_len = 1024;
  o.cuda_graphs = graphs;
  return o;
}

// Row r of a step: greedy with logprobs, seeded top-p, or greedy with a repetition penalty on
// a few tokens (adjustments), so that every sampler path runs inside the graph.
SampleBatch sampling_for(size_t rows, std::vector<RowSamplingParams>& params,
                         std::vector<LogitAdjustment>& adjustments) {
  params.assign(rows, RowSamplingParams{});
  adjustments.clear();
  for (size_t r = 0; r < rows; ++r) {
    RowSamplingParams& p = params[r];
    p.top_logprobs = 2;
    p.uniform = 0.25 + 0.5 * static_cast<double>(r) / static_cast<double>(rows);
    if (r % 3 == 1) p.temperature = 0.9f, p.top_p = 0.8f;
    if (r % 3 == 2) {
      p.repetition_penalty = 1.3f;
      p.adjust_begin = static_cast<int32_t>(adjustments.size());
      for (int32_t t = 1; t < 6; ++t) adjustments.push_back({t * 7, 0.0f, 1, 1});
      p.adjust_end = static_cast<int32_t>(adjustments.size());
    }
  }
  return SampleBatch{params, adjustments};
}

std::vector<RowSample> sample_step(Backend& be, const std::vector<SeqStep>& seqs) {
  const ForwardBatchArrays batch = autoglm::test::make_batch(be, seqs);
  std::vector<RowSamplingParams> params;
  std::vector<LogitAdjustment> adjustments;
  const SampleBatch sampling = sampling_for(batch.logits_rows.size(), params, adjustments);
  std::vector<RowSample> out(batch.logits_rows.size());
  be.forward_sample(batch.view(), sampling, out);
  return out;
}

// Prefills `prompt` in chunks of at most 200 tokens (eager: not a decode step).
void prefill(Backend& be, const std::vector<int32_t>& prompt, const std::vector<int32_t>& blocks) {
  for (size_t at = 0; at < prompt.size(); at += 200) {
    const size_t end = std::min(prompt.size(), at + 200);
    sample_step(be, {SeqStep{{prompt.begin() + static_cast<std::ptrdiff_t>(at),
                              prompt.begin() + static_cast<std::ptrdiff_t>(end)},
                             static_cast<int32_t>(at),
                             blocks}});
  }
}

using CudaGraphDecode = cuda::test::FixtureModelsTest;

// Overlapped scheduling on the GPU: a step names the previous step's samples by row, and the
// embedding kernel reads them from the device, with the step queued before the previous one
// is collected. Greedy tokens must equal those of steps fed the collected ids from the host,
// with graphs on (buckets 1 and 4 or 8) and off.
TEST_F(CudaGraphDecode, StepsFedTheirPreviousSamplesOnTheDeviceMatchHostFedSteps) {
  using autoglm::test::StepFeed;
  for (const auto& dir : dirs_) {
    autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dir);
    std::vector<std::vector<int32_t>> prompts;
    for (const auto& p : m.prompts) prompts.push_back(p.ids);
    for (const bool graphs : {true, false}) {
      for (const size_t batch : {size_t{1}, prompts.size()}) {
        SCOPED_TRACE(m.name + (graphs ? " graphs" : " eager") + " batch " + std::to_string(batch));
        const std::vector<std::vector<int32_t>> some(prompts.begin(),
                                                     prompts.begin() + static_cast<long>(batch));
        auto host_fed = make_cuda_backend(*m.model, graph_test_options(graphs));
        const auto want = autoglm::test::greedy_steps(*host_fed, some, 12, StepFeed::kHostTokens);
        for (const StepFeed feed : {StepFeed::kSampleRows, StepFeed::kSampleRowsPipelined}) {
          auto be = make_cuda_backend(*m.model, graph_test_options(graphs));
          EXPECT_EQ(autoglm::test::greedy_steps(*be, some, 12, feed), want);
        }
      }
    }
  }
}

// Both backends decode the same teacher-forced tokens (the eager run's), so a near-tie that
// tips differently cannot make the rest of the comparison diverge.
TEST_F(CudaGraphDecode, MatchesEagerDecodeInEveryBucket) {
  constexpr int kSteps = 5;
  for (const auto& dir : dirs_) {
    autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dir);
    SCOPED_TRACE(m.name);
    auto graphed = make_cuda_backend(*m.model, graph_test_options(true));
    auto eager = make_cuda_backend(*m.model, graph_test_options(false));
    // Five sequences; the last two have contexts past 256 tokens (the next context bucket).
    std::mt19937 rng(7);
    std::uniform_int_distribution<int32_t> token(0, m.vocab() - 1);
    std::vector<std::vector<int32_t>> prompts;
    for (const auto& p : m.prompts) prompts.push_back(p.ids);
    prompts.resize(3, m.prompts.front().ids);
    for (int32_t len : {300, 270}) {
      std::vector<int32_t> ids(static_cast<size_t>(len));
      for (int32_t& id : ids) id = token(rng);
      prompts.push_back(ids);
    }
    std::vector<SeqStep> seqs;
    int32_t next_block = 0;
    for (const auto& ids : prompts) {
      const auto len = static_cast<int32_t>(ids.size()) + 3 * kSteps;
      seqs.push_back({{}, 0, autoglm::test::contiguous_blocks(len, kBlockSize, next_block)});
      next_block += static_cast<int32_t>(seqs.back().blocks.size());
      for (Backend* be : {graphed.get(), eager.get()}) prefill(*be, ids, seqs.back().blocks);
      seqs.back().first_pos = static_cast<int32_t>(ids.size());
      seqs.back().ids = {ids.back()};
    }
    const auto* cuda = dynamic_cast<const cuda::CudaBackend*>(graphed.get());
    ASSERT_NE(cuda, nullptr);
    const size_t graphs_before = cuda->decode_graph_count();
    // Steps over all five (batch bucket 8, context bucket 512), the first three (4, 256), then
    // the last one alone (1, 512).
    struct Range {
      size_t begin, count;
    };
    for (const Range range : {Range{0, 5}, Range{0, 3}, Range{4, 1}}) {
      for (int step = 0; step < kSteps; ++step) {
        const auto first = seqs.begin() + static_cast<std::ptrdiff_t>(range.begin);
        const std::vector<SeqStep> active(first, first + static_cast<std::ptrdiff_t>(range.count));
        const std::vector<RowSample> want = sample_step(*eager, active);
        const std::vector<RowSample> got = sample_step(*graphed, active);
        ASSERT_EQ(got.size(), want.size());
        for (size_t r = 0; r < want.size(); ++r) {
          SCOPED_TRACE("batch " + std::to_string(range.count) + " step " + std::to_string(step) +
                       " row " + std::to_string(r));
          seqs[range.begin + r].first_pos += 1;
          seqs[range.begin + r].ids = {want[r].token};
          EXPECT_EQ(got[r].flags, 0);
          EXPECT_NEAR(got[r].top_logprobs[0], want[r].top_logprobs[0], 2e-2);
          const float margin = want[r].top_logprobs[0] - want[r].top_logprobs[1];
          if (margin < 2e-2f) continue;  // a near-tie may tip either way in the last bit
          EXPECT_EQ(got[r].top_ids[0], want[r].top_ids[0]);
          if (r % 3 != 1) {  // greedy rows
            EXPECT_EQ(got[r].token, want[r].token);
          }
        }
      }
    }
    EXPECT_EQ(cuda->decode_graph_count() - graphs_before, 3u);  // each replayed after capture
  }
}

}  // namespace
}  // namespace autoglm
