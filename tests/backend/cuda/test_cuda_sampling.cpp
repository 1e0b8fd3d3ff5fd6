// The GPU sampler (backend/cuda/sampling.h) against the host reference (backend/row_sampler.h)
// on random logits rows of awkward vocabulary sizes: greedy, temperature, top-k, top-p, min-p
// and their combinations, penalties and logit_bias, many exact ties (logits on a coarse grid),
// logprobs with alternatives, and non-finite rows. Outputs are poisoned before each launch.
// The adjusted logits must equal the host's bit for bit; the chosen tokens must be the same
// (both draw with the same variate, in token-id order); logprobs agree to 1e-4.
// Skipped, with a message, when no GPU is present.
// Thread ownership: the test main thread only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/sampling.h"
#include "backend/row_sampler.h"
#include "cuda_test_util.h"

namespace autoglm::cuda {
namespace {

using test::DeviceArray;

template <typename T>
DeviceArray upload(const std::vector<T>& host) {
  DeviceArray d(std::max<size_t>(host.size(), 1), sizeof(T));
  if (!host.empty()) {
    AUTOGLM_CUDA_CHECK(
        cudaMemcpy(d.get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  return d;
}

template <typename T>
std::vector<T> download(const DeviceArray& d, size_t count) {
  std::vector<T> host(count);
  AUTOGLM_CUDA_CHECK(cudaMemcpy(host.data(), d.get(), count * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

struct Case {
  std::string name;
  RowSamplingParams params;
  bool adjust = false;  // penalties and logit_bias over a random history
  bool coarse = false;  // logits on a 1/4 grid: many exact ties
};

std::vector<Case> cases() {
  std::vector<Case> out;
  const auto add = [&](std::string name, auto set, bool adjust = false, bool coarse = false) {
    Case c;
    c.name = std::move(name);
    set(c.params);
    c.adjust = adjust;
    c.coarse = coarse;
    out.push_back(c);
  };
  add("greedy", [](RowSamplingParams&) {});
  add("greedy_logprobs", [](RowSamplingParams& p) { p.top_logprobs = 5; });
  add(
      "greedy_ties", [](RowSamplingParams& p) { p.top_logprobs = 20; }, false, true);
  add("temperature", [](RowSamplingParams& p) { p.temperature = 0.7f; });
  add("top_k_1", [](RowSamplingParams& p) { p.temperature = 1.0f, p.top_k = 1; });
  add("top_k_40", [](RowSamplingParams& p) { p.temperature = 1.0f, p.top_k = 40; });
  add(
      "top_k_ties", [](RowSamplingParams& p) { p.temperature = 1.0f, p.top_k = 37; }, false, true);
  add("top_p", [](RowSamplingParams& p) { p.temperature = 1.0f, p.top_p = 0.9f; });
  add("top_p_small", [](RowSamplingParams& p) { p.temperature = 0.8f, p.top_p = 0.3f; });
  add(
      "top_p_ties", [](RowSamplingParams& p) { p.temperature = 1.0f, p.top_p = 0.7f; }, false,
      true);
  add("top_k_top_p",
      [](RowSamplingParams& p) { p.temperature = 1.2f, p.top_k = 50, p.top_p = 0.8f; });
  add("min_p", [](RowSamplingParams& p) { p.temperature = 1.0f, p.min_p = 0.1f; });
  add(
      "everything",
      [](RowSamplingParams& p) {
        p.temperature = 1.3f, p.top_k = 200, p.top_p = 0.95f, p.min_p = 0.02f;
        p.top_logprobs = 20;
        p.repetition_penalty = 1.3f, p.frequency_penalty = 0.5f, p.presence_penalty = 0.25f;
      },
      true);
  add(
      "penalties_greedy",
      [](RowSamplingParams& p) {
        p.repetition_penalty = 0.8f, p.frequency_penalty = -0.4f, p.presence_penalty = 0.6f;
        p.top_logprobs = 3;
      },
      true);
  return out;
}

// sample_rows over `rows` rows of `logits` with no logit adjustments, the samples downloaded.
std::vector<RowSample> sample_on_device(const std::vector<float>& logits, int32_t rows,
                                        int32_t vocab,
                                        const std::vector<RowSamplingParams>& params) {
  DeviceArray d_logits = upload(logits), d_params = upload(params);
  DeviceArray d_adjust(1, sizeof(LogitAdjustment)), d_out(rows, sizeof(RowSample));
  DeviceArray d_scan(sample_scan_bytes(rows, vocab), 1);
  d_out.poison();
  sample_rows(d_logits.as<float>(), rows, vocab, d_params.as<RowSamplingParams>(),
              d_adjust.as<LogitAdjustment>(), d_out.as<RowSample>(), d_scan.get(), nullptr);
  test::sync();
  return download<RowSample>(d_out, static_cast<size_t>(rows));
}

class CudaSampling : public ::testing::Test {
 protected:
  void SetUp() override { AUTOGLM_SKIP_WITHOUT_GPU(); }
  std::mt19937 rng_{4321};
};

TEST_F(CudaSampling, MatchesTheHostReference) {
  constexpr int32_t kRowsPerCase = 24;
  for (const int32_t vocab : {1, 7, 1000, 1023, 1025, 32000, 151553}) {
    std::vector<float> logits;
    std::vector<RowSamplingParams> params;
    std::vector<LogitAdjustment> adjustments;
    std::vector<std::string> names;
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (const Case& c : cases()) {
      for (int32_t r = 0; r < kRowsPerCase; ++r) {
        for (int32_t i = 0; i < vocab; ++i) {
          const float v = normal(rng_);
          logits.push_back(c.coarse ? std::round(v * 4.0f) / 4.0f : v);
        }
        RowSamplingParams p = c.params;
        p.uniform = uniform(rng_);
        p.adjust_begin = static_cast<int32_t>(adjustments.size());
        if (c.adjust) {
          const int32_t n = std::min(vocab, 1 + static_cast<int32_t>(rng_() % 300));
          for (int32_t a = 0; a < n; ++a) {
            LogitAdjustment adj;
            adj.token = (a * 7919) % vocab;  // distinct while n <= vocab (7919 is prime)
            adj.seen = static_cast<int32_t>(rng_() % 2);
            adj.generated = adj.seen != 0 ? static_cast<int32_t>(rng_() % 4) : 0;
            adj.bias = (a % 5 == 0) ? std::uniform_real_distribution<float>(-5, 5)(rng_) : 0.0f;
            bool duplicate = false;
            for (int32_t b = p.adjust_begin; b < static_cast<int32_t>(adjustments.size()); ++b) {
              duplicate = duplicate || adjustments[b].token == adj.token;
            }
            if (!duplicate) adjustments.push_back(adj);
          }
        }
        p.adjust_end = static_cast<int32_t>(adjustments.size());
        params.push_back(p);
        names.push_back(c.name);
      }
    }
    const int32_t rows = static_cast<int32_t>(params.size());
    DeviceArray d_logits = upload(logits);
    DeviceArray d_params = upload(params);
    DeviceArray d_adjust = upload(adjustments);
    DeviceArray d_out(static_cast<size_t>(rows), sizeof(RowSample));
    DeviceArray d_scan(sample_scan_bytes(rows, vocab), 1);
    d_out.poison();
    sample_rows(d_logits.as<float>(), rows, vocab, d_params.as<RowSamplingParams>(),
                d_adjust.as<LogitAdjustment>(), d_out.as<RowSample>(), d_scan.get(), nullptr);
    test::sync();
    const std::vector<RowSample> got = download<RowSample>(d_out, static_cast<size_t>(rows));
    const std::vector<float> adjusted = download<float>(d_logits, logits.size());
    for (int32_t r = 0; r < rows; ++r) {
      SCOPED_TRACE(names[r] + " vocab " + std::to_string(vocab) + " row " + std::to_string(r));
      std::span<float> row(logits.data() + static_cast<size_t>(r) * vocab,
                           static_cast<size_t>(vocab));
      const RowSamplingParams& p = params[r];
      const RowSample want = sample_row(
          row, p,
          std::span<const LogitAdjustment>(adjustments.data() + p.adjust_begin,
                                           static_cast<size_t>(p.adjust_end - p.adjust_begin)));
      ASSERT_EQ(std::memcmp(row.data(), adjusted.data() + static_cast<size_t>(r) * vocab,
                            row.size() * sizeof(float)),
                0)
          << "adjusted logits differ";
      EXPECT_EQ(got[r].token, want.token);
      EXPECT_EQ(got[r].flags, want.flags);
      if (p.top_logprobs >= 0) {
        EXPECT_NEAR(got[r].logprob, want.logprob, 1e-4);
        ASSERT_EQ(got[r].n_top, want.n_top);
        for (int32_t j = 0; j < want.n_top; ++j) {
          EXPECT_EQ(got[r].top_ids[j], want.top_ids[j]) << "alternative " << j;
          EXPECT_NEAR(got[r].top_logprobs[j], want.top_logprobs[j], 1e-4) << "alternative " << j;
        }
      }
    }
  }
}

// One row drawn with many variates: the GPU's choices over a sweep of u reproduce the host's,
// which makes the two distributions equal, not just a few samples.
TEST_F(CudaSampling, VariateSweepReproducesTheHostDistribution) {
  const int32_t vocab = 50'000;
  constexpr int32_t kRows = 512;
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> one(vocab);
  for (float& v : one) v = normal(rng_);
  std::vector<float> logits;
  std::vector<RowSamplingParams> params;
  for (int32_t r = 0; r < kRows; ++r) {
    logits.insert(logits.end(), one.begin(), one.end());
    RowSamplingParams p;
    p.temperature = 0.9f;
    p.top_p = 0.97f;
    p.top_k = 1000;
    p.uniform = (r + 0.5) / kRows;
    params.push_back(p);
  }
  const std::vector<RowSample> got = sample_on_device(logits, kRows, vocab, params);
  int32_t differ = 0;
  for (int32_t r = 0; r < kRows; ++r) {
    std::vector<float> row = one;
    differ += got[r].token != sample_row(row, params[r], {}).token ? 1 : 0;
  }
  EXPECT_EQ(differ, 0);
}

// Greedy rows of GLM-4's vocabulary: 151,552 (every row 16-byte aligned: the float4 pass) and
// 151,551 (rows start 0-3 floats past a boundary: the head and tail paths too), with the
// maximum planted at the first, last, head and a middle position, and an exact tie whose lower
// id must win.
TEST_F(CudaSampling, GreedyRowsPickTheFirstMaximum) {
  for (const int32_t vocab : {151552, 151551}) {
    SCOPED_TRACE("vocab " + std::to_string(vocab));
    const std::vector<std::vector<int32_t>> planted = {
        {0}, {vocab - 1}, {1}, {2}, {77777}, {vocab - 3, 4}, {9000, 9001}, {130000, 5, 60000}};
    const int32_t rows = static_cast<int32_t>(planted.size());
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> logits(static_cast<size_t>(rows) * vocab);
    for (float& v : logits) v = normal(rng_);
    for (int32_t r = 0; r < rows; ++r) {
      for (int32_t id : planted[r]) logits[static_cast<size_t>(r) * vocab + id] = 100.0f;
    }
    const std::vector<RowSamplingParams> params(rows);
    const std::vector<RowSample> got = sample_on_device(logits, rows, vocab, params);
    for (int32_t r = 0; r < rows; ++r) {
      std::span<float> row(logits.data() + static_cast<size_t>(r) * vocab,
                           static_cast<size_t>(vocab));
      const int32_t lowest = *std::min_element(planted[r].begin(), planted[r].end());
      EXPECT_EQ(got[r].token, lowest) << "row " << r;
      EXPECT_EQ(got[r].token, sample_row(row, params[r], {}).token) << "row " << r;
      EXPECT_EQ(got[r].flags, 0) << "row " << r;
    }
  }
}

TEST_F(CudaSampling, NonFiniteRowsAreFlagged) {
  const int32_t vocab = 3000;
  std::vector<float> logits(3 * vocab, 0.5f);
  logits[17] = std::numeric_limits<float>::quiet_NaN();
  logits[vocab + 2999] = std::numeric_limits<float>::infinity();
  std::vector<RowSamplingParams> params(3);
  params[1].temperature = 1.0f;
  params[2].temperature = 1.0f, params[2].top_p = 0.5f;
  const std::vector<RowSample> got = sample_on_device(logits, 3, vocab, params);
  EXPECT_EQ(got[0].flags, kRowNonFiniteLogits);
  EXPECT_EQ(got[1].flags, kRowNonFiniteLogits);
  EXPECT_EQ(got[2].flags, 0);
  for (const RowSample& s : got) {
    EXPECT_GE(s.token, 0);
    EXPECT_LT(s.token, vocab);
  }
}

// HostSamples: each row's sample also lands in pinned host memory, in the slot the device int
// names (as a replayed graph finds the current step's slot), and nowhere else in that buffer.
TEST_F(CudaSampling, SamplesReachTheNamedHostSlot) {
  constexpr int32_t kRows = 5, kVocab = 3000, kSlots = 3;
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(kRows) * kVocab);
  for (float& v : logits) v = normal(rng_);
  std::vector<RowSamplingParams> params(kRows);
  params[1].temperature = 0.8f;
  params[1].uniform = 0.37;
  params[2].top_logprobs = 3;
  PinnedBuffer host(static_cast<size_t>(kSlots) * kRows * sizeof(RowSample), "test samples");
  auto* rows = static_cast<RowSample*>(host.get());
  for (int32_t slot = 0; slot < kSlots; ++slot) {
    std::memset(host.get(), 0xA5, host.bytes());
    DeviceArray d_logits = upload(logits), d_params = upload(params);
    DeviceArray d_slot = upload(std::vector<int32_t>{slot});
    DeviceArray d_adjust(1, sizeof(LogitAdjustment)), d_out(kRows, sizeof(RowSample));
    DeviceArray d_scan(sample_scan_bytes(kRows, kVocab), 1);
    d_out.poison();
    sample_rows(d_logits.as<float>(), kRows, kVocab, d_params.as<RowSamplingParams>(),
                d_adjust.as<LogitAdjustment>(), d_out.as<RowSample>(), d_scan.get(), nullptr,
                HostSamples{rows, d_slot.as<int32_t>(), kRows});
    test::sync();
    const std::vector<RowSample> device = download<RowSample>(d_out, kRows);
    for (int32_t s = 0; s < kSlots; ++s) {
      for (int32_t r = 0; r < kRows; ++r) {
        SCOPED_TRACE("slot " + std::to_string(slot) + ", buffer slot " + std::to_string(s) +
                     ", row " + std::to_string(r));
        const RowSample& got = rows[s * kRows + r];
        if (s == slot) {
          EXPECT_EQ(std::memcmp(&got, &device[r], sizeof(RowSample)), 0);
          EXPECT_GE(got.token, 0);
        } else {
          EXPECT_EQ(got.token, static_cast<int32_t>(0xA5A5A5A5)) << "a slot not named was written";
        }
      }
    }
  }
}

}  // namespace
}  // namespace autoglm::cuda
