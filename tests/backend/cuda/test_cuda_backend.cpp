// The CUDA backend end to end on every fixture model (tests/fixtures/models/*-tiny): logits
// against transformers' fp32 truth within BF16/FP16 tolerance, transformers' greedy
// continuation reproduced (teacher-forced, >= 30 of 32 tokens, near-ties reported), a ragged
// batch of 8 decoding like each sequence alone, and a model that does not fit failing with the
// numbers. Skipped, with a message, when no GPU is present.
// Thread ownership: the test (or program) main thread only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend_test_util.h"
#include "core/error.h"
#include "cuda_test_util.h"

namespace autoglm {
namespace {

using autoglm::test::SeqStep;

constexpr int32_t kBlockSize = 16;
constexpr int32_t kPoolBlocks = 256;

CudaBackendOptions test_options() {
  CudaBackendOptions o;
  o.block_size = kBlockSize;
  o.num_kv_blocks = kPoolBlocks;
  o.max_num_seqs = 16;
  o.max_batched_tokens = 256;
  o.max_logits_rows = 16;  // prompts longer than this take several lm_head passes
  o.max_context_len = 1024;
  return o;
}

// The checkpoint's dtype decides BF16 vs FP16 (F32 checkpoints run in BF16).
double logits_tolerance(const LoadedModel& m) {
  return m.model_dtype() == DType::kF16 ? 5e-3 : 3e-2;
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float f) { return std::isfinite(f); });
}

// top-1 minus top-2 logit, relative to the row's largest magnitude.
double top2_margin(const float* row, int32_t n) {
  std::vector<float> v(row, row + n);
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<float>());
  float scale = 0;
  for (int32_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(row[i]));
  return (v[0] - v[1]) / std::max(scale, 1e-30f);
}

class CudaBackendE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    AUTOGLM_SKIP_WITHOUT_GPU();
    dirs_ = autoglm::test::reference_model_dirs();
    if (dirs_.empty()) GTEST_SKIP() << "no fixture models under tests/fixtures/models";
  }
  std::vector<std::filesystem::path> dirs_;
};

TEST_F(CudaBackendE2E, LogitsMatchTransformers) {
  for (const auto& dir : dirs_) {
    autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dir);
    auto be = make_cuda_backend(*m.model, test_options());
    const double tol = logits_tolerance(*m.model);
    for (const auto& p : m.prompts) {
      SCOPED_TRACE(m.name + "/" + p.name);
      const int32_t n = static_cast<int32_t>(p.ids.size());
      const auto logits = autoglm::test::run_step(
          *be, {{p.ids, 0, autoglm::test::contiguous_blocks(n, kBlockSize, 3)}});
      ASSERT_TRUE(all_finite(logits));  // max_rel_diff alone would let NaN through
      double worst = 0;
      for (int32_t t = 0; t < n; ++t) {
        const size_t off = static_cast<size_t>(t) * m.vocab();
        worst = std::max(worst, autoglm::test::max_rel_diff(logits.data() + off,
                                                            p.logits.data() + off, m.vocab()));
      }
      EXPECT_LT(worst, tol);
      std::printf("[logits] %s/%s max_rel_diff %.3g (tolerance %.0e)\n", m.name.c_str(),
                  p.name.c_str(), worst, tol);
    }
  }
}

// Prefill, then 32 decode steps fed with transformers' tokens: each step's argmax must be
// transformers' next token, for at least 30 of 32 (BF16 can flip a near-tie; those are printed).
TEST_F(CudaBackendE2E, GreedyContinuationMatchesTransformers) {
  for (const auto& dir : dirs_) {
    autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dir);
    auto be = make_cuda_backend(*m.model, test_options());
    for (const auto& p : m.prompts) {
      SCOPED_TRACE(m.name + "/" + p.name);
      const int32_t total = static_cast<int32_t>(p.ids.size() + p.greedy.size());
      const auto blocks = autoglm::test::contiguous_blocks(total, kBlockSize, 10);
      SeqStep step{p.ids, 0, blocks};
      int matches = 0;
      for (size_t i = 0; i < p.greedy.size(); ++i) {
        const auto logits = autoglm::test::run_step(*be, {step});
        ASSERT_TRUE(all_finite(logits));
        const float* last = logits.data() + (step.ids.size() - 1) * m.vocab();
        const int32_t got = autoglm::test::argmax(last, m.vocab());
        if (got == p.greedy[i]) {
          ++matches;
        } else {
          std::printf("[greedy] %s/%s step %zu: got %d, transformers %d, top-2 margin %.3g\n",
                      m.name.c_str(), p.name.c_str(), i, got, p.greedy[i],
                      top2_margin(last, m.vocab()));
        }
        step.first_pos += static_cast<int32_t>(step.ids.size());
        step.ids = {p.greedy[i]};
      }
      EXPECT_GE(matches, static_cast<int>(p.greedy.size()) - 2);
      std::printf("[greedy] %s/%s %d of %zu match\n", m.name.c_str(), p.name.c_str(), matches,
                  p.greedy.size());
    }
  }
}

// Greedy-decodes the 8 prompts in one ragged batch, then replays each sequence alone with the
// same tokens: the logits must agree closely and the argmax exactly, except at near-ties.
TEST_F(CudaBackendE2E, BatchOfEightDecodesLikeEachSequenceAlone) {
  constexpr int kSteps = 12;
  for (const auto& dir : dirs_) {
    autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dir);
    SCOPED_TRACE(m.name);
    auto be = make_cuda_backend(*m.model, test_options());
    std::vector<std::vector<int32_t>> prompts;
    for (const auto& p : m.prompts) prompts.push_back(p.ids);
    prompts.push_back({m.prompts[1].ids.begin(), m.prompts[1].ids.begin() + 3});
    std::vector<SeqStep> seqs;
    int32_t next_block = 0;
    for (const auto& ids : prompts) {
      seqs.push_back({ids, 0,
                      autoglm::test::scattered_blocks(static_cast<int32_t>(ids.size()) + kSteps,
                                                      kBlockSize, next_block, kPoolBlocks / 2)});
      next_block += static_cast<int32_t>(seqs.back().blocks.size());
    }
    // Batched run: record each sequence's last-row logits per step.
    std::vector<std::vector<std::vector<float>>> batched(seqs.size());
    std::vector<std::vector<int32_t>> tokens(seqs.size());
    std::vector<SeqStep> run = seqs;
    for (int step = 0; step < kSteps; ++step) {
      const auto logits = autoglm::test::run_step(*be, run);
      ASSERT_TRUE(all_finite(logits));
      size_t row = 0;
      for (size_t s = 0; s < run.size(); ++s) {
        row += run[s].ids.size();
        const float* last = logits.data() + (row - 1) * m.vocab();
        batched[s].emplace_back(last, last + m.vocab());
        tokens[s].push_back(autoglm::test::argmax(last, m.vocab()));
        run[s].first_pos += static_cast<int32_t>(run[s].ids.size());
        run[s].ids = {tokens[s].back()};
      }
    }
    // Each alone, on the other half of the pool, fed the batched run's tokens.
    for (size_t s = 0; s < seqs.size(); ++s) {
      SeqStep alone = seqs[s];
      for (int32_t& b : alone.blocks) b += kPoolBlocks / 2;
      for (int step = 0; step < kSteps; ++step) {
        const auto logits = autoglm::test::run_step(*be, {alone});
        ASSERT_TRUE(all_finite(logits));
        const float* last = logits.data() + (alone.ids.size() - 1) * m.vocab();
        const auto& ref = batched[s][step];
        EXPECT_LT(autoglm::test::max_rel_diff(last, ref.data(), m.vocab()), 1e-2)
            << "sequence " << s << " step " << step;
        const int32_t got = autoglm::test::argmax(last, m.vocab());
        if (got != tokens[s][step]) {
          EXPECT_LT(top2_margin(ref.data(), m.vocab()), 1e-2)
              << "sequence " << s << " step " << step << ": argmax differs without a near-tie";
        }
        alone.first_pos += static_cast<int32_t>(alone.ids.size());
        alone.ids = {tokens[s][step]};
      }
    }
  }
}

TEST_F(CudaBackendE2E, ModelThatDoesNotFitFailsWithTheNumbers) {
  autoglm::test::ReferenceModel m = autoglm::test::load_reference_model(dirs_.front());
  CudaBackendOptions o = test_options();
  o.memory_fraction = 1e-7;  // ~10 KB of an 80 GB device
  try {
    make_cuda_backend(*m.model, o);
    FAIL() << "expected a budget error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    const std::string what = e.what();
    EXPECT_NE(what.find("weights"), std::string::npos) << what;
    EXPECT_NE(what.find("budget"), std::string::npos) << what;
    EXPECT_NE(what.find("free"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace autoglm
