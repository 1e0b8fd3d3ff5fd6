// The fast CPU kernels (every SIMD table this CPU can run) against the scalar reference kernels
// on random data, including odd sizes and tails, for F32/F16/BF16 weights; the thread pool's
// partitioning; and the backend giving bit-identical logits for any thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_kernels.h"
#include "backend/cpu/thread_pool.h"
#include "model/model_dir.h"

namespace autoglm::cpu {
namespace {

// Weights of one dtype stored as raw bytes, values roughly in [-2, 2].
struct RandomWeights {
  DType dtype;
  std::vector<uint8_t> bytes;
  WeightMatrix matrix(int64_t rows, int64_t cols) const {
    return WeightMatrix{dtype, bytes.data(), rows, cols};
  }
};

RandomWeights make_weights(DType dtype, int64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  RandomWeights w{dtype, {}};
  w.bytes.resize(static_cast<size_t>(count) * dtype_size(dtype));
  for (int64_t i = 0; i < count; ++i) {
    const float f = value(rng);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if (dtype == DType::kF32) {
      std::memcpy(w.bytes.data() + i * 4, &f, 4);
    } else if (dtype == DType::kBF16) {
      const uint16_t h = static_cast<uint16_t>(bits >> 16);
      std::memcpy(w.bytes.data() + i * 2, &h, 2);
    } else {
      // F16: sign, exponent 10..16 (2^-5 .. 2^1), random mantissa; a normal number.
      const uint16_t h =
          static_cast<uint16_t>(((bits >> 31) << 15) | ((10 + rng() % 7) << 10) | (rng() & 0x3FF));
      std::memcpy(w.bytes.data() + i * 2, &h, 2);
    }
  }
  return w;
}

std::vector<float> random_floats(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = value(rng);
  return v;
}

// Bound for fp32 dot products of length n summed in a different order: relative to the sum of
// absolute products, which is what reordering error scales with.
double tolerance(const float* x, const WeightMatrix& w, int64_t row, int64_t n) {
  std::vector<float> wr(static_cast<size_t>(n));
  load_row(w, row, wr.data());
  double mag = 0;
  for (int64_t i = 0; i < n; ++i) mag += std::abs(static_cast<double>(x[i]) * wr[i]);
  return 1e-6 * mag + 1e-6;
}

TEST(CpuKernels, LinearRowsMatchScalarReferenceForEveryIsaDtypeAndShape) {
  std::mt19937 rng(1234);
  const int64_t col_sizes[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 257};
  // Rows past one packed block (64) and tokens past one register tile (12 with AVX-512).
  const int64_t row_sizes[] = {1, 3, 4, 5, 17, 37, 70};
  const int64_t token_counts[] = {1, 2, 3, 5, 9, 13, 25};
  for (const SimdKernels* k : available_kernels()) {
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (int64_t cols : col_sizes) {
        for (int64_t rows : row_sizes) {
          const RandomWeights weights = make_weights(dtype, rows * cols, rng);
          const WeightMatrix w = weights.matrix(rows, cols);
          const std::vector<float> bias = random_floats(rows, rng);
          const WeightMatrix bias_matrix{DType::kF32, bias.data(), 1, rows};
          for (int64_t n : token_counts) {
            const std::vector<float> x = random_floats(n * cols, rng);
            std::vector<float> want(static_cast<size_t>(n * rows)), scratch(cols);
            linear(x.data(), n, w, bias_matrix, want.data(), scratch.data());
            // A sub-range of rows, as one thread would get it; other rows must stay untouched.
            const int64_t r0 = rows > 2 ? 1 : 0;
            const int64_t r1 = rows;
            std::vector<float> got(static_cast<size_t>(n * rows), -7.0f);
            std::vector<float> gemm_scratch(static_cast<size_t>(kGemmRowBlock * cols));
            k->linear_rows(x.data(), n, w, bias.data(), r0, r1, got.data(), gemm_scratch.data());
            for (int64_t t = 0; t < n; ++t) {
              for (int64_t o = 0; o < rows; ++o) {
                const float g = got[t * rows + o];
                if (o < r0) {
                  ASSERT_EQ(g, -7.0f);
                  continue;
                }
                const double tol = tolerance(x.data() + t * cols, w, o, cols) + 1e-6 * 2;
                ASSERT_NEAR(g, want[t * rows + o], tol)
                    << k->isa << " " << dtype_name(dtype) << " rows=" << rows << " cols=" << cols
                    << " tokens=" << n << " t=" << t << " o=" << o;
              }
            }
          }
        }
      }
    }
  }
}

TEST(CpuKernels, DotAndAxpyMatchScalar) {
  std::mt19937 rng(99);
  for (const SimdKernels* k : available_kernels()) {
    for (int64_t n : {1, 5, 8, 16, 23, 64, 65, 128, 131}) {
      const std::vector<float> a = random_floats(n, rng);
      const std::vector<float> b = random_floats(n, rng);
      double want = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        want += static_cast<double>(a[i]) * b[i];
        mag += std::abs(static_cast<double>(a[i]) * b[i]);
      }
      EXPECT_NEAR(k->dot(a.data(), b.data(), n), want, 1e-6 * mag + 1e-7) << k->isa << " " << n;
      std::vector<float> y = b;
      k->axpy(0.37f, a.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(y[i], b[i] + 0.37f * a[i], 1e-6) << k->isa << " " << n << " " << i;
      }
    }
  }
}

// One token's grouped attention over a paged pool whose blocks are out of order, against the
// same math in double: every query head of the group, every ISA, head sizes with tails.
TEST(CpuKernels, AttendMatchesScalarAttentionOverScatteredBlocks) {
  std::mt19937 rng(7);
  constexpr int32_t kBlock = 4;
  const std::vector<int32_t> blocks = {5, 0, 3, 1, 4, 2};
  for (const SimdKernels* k : available_kernels()) {
    for (const int64_t hd : {8, 23, 64}) {
      for (const int64_t group : {1, 3}) {
        for (const int32_t n_keys : {1, 7, 21}) {
          const int64_t kv_heads = 2, row = kv_heads * hd, kv_off = hd;  // the second KV head
          const std::vector<float> q = random_floats(group * hd, rng);
          const std::vector<float> kc = random_floats(24 * row, rng);
          const std::vector<float> vc = random_floats(24 * row, rng);
          std::vector<float> scores(static_cast<size_t>(group * n_keys)),
              out(static_cast<size_t>(group * hd));
          AttendArgs a{
              q.data(), group,         hd,     0.3f,   kc.data() + kv_off, vc.data() + kv_off,
              row,      blocks.data(), kBlock, n_keys, scores.data(),      out.data()};
          k->attend(a);
          for (int64_t g = 0; g < group; ++g) {
            std::vector<double> p(static_cast<size_t>(n_keys));
            double mx = -1e300, sum = 0;
            for (int32_t j = 0; j < n_keys; ++j) {
              const int64_t slot = int64_t{blocks[j / kBlock]} * kBlock + j % kBlock;
              double s = 0;
              for (int64_t i = 0; i < hd; ++i)
                s += double{q[g * hd + i]} * kc[slot * row + kv_off + i];
              p[j] = 0.3 * s;
              mx = std::max(mx, p[j]);
            }
            for (double& v : p) sum += (v = std::exp(v - mx));
            for (int64_t i = 0; i < hd; ++i) {
              double want = 0;
              for (int32_t j = 0; j < n_keys; ++j) {
                const int64_t slot = int64_t{blocks[j / kBlock]} * kBlock + j % kBlock;
                want += p[j] / sum * vc[slot * row + kv_off + i];
              }
              EXPECT_NEAR(out[g * hd + i], want, 1e-5)
                  << k->isa << " hd " << hd << " group " << group << " keys " << n_keys;
            }
          }
        }
      }
    }
  }
}

TEST(CpuKernels, PortableTableIsAlwaysAvailableAndLast) {
  const auto all = available_kernels();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back(), &portable_kernels());
  EXPECT_FALSE(best_kernels().isa.empty());
}

TEST(CpuThreadPool, ParallelForCoversEveryIndexOnceWithGrainAlignedRanges) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 7, 16, 17, 100, 1000}) {
      for (int64_t grain : {1, 4, 16}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> misaligned{0};
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int thread) {
          if (b % grain != 0 || thread < 0 || thread >= threads) ++misaligned;
          for (int64_t i = b; i < e; ++i) ++hits[i];
        });
        EXPECT_EQ(misaligned.load(), 0);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << grain;
      }
    }
    // Many back-to-back regions: no lost wake-ups, every thread runs each region once.
    std::vector<std::atomic<int>> per_thread(static_cast<size_t>(threads));
    auto body = [&](int index) { ++per_thread[index]; };
    for (int r = 0; r < 300; ++r) pool.run(body);
    for (int i = 0; i < threads; ++i) EXPECT_EQ(per_thread[i].load(), 300);
  }
}

// Logits of the glm4-tiny fixture for a 13-token prompt under the given options.
std::vector<float> fixture_logits(const LoadedModel& model, CpuBackendOptions options) {
  const std::vector<int32_t> ids = {1, 5, 9, 2, 7, 3, 11, 4, 6, 8, 10, 12, 13};
  const int32_t n = static_cast<int32_t>(ids.size());
  std::vector<int32_t> pos(ids.size()), slots(ids.size()), rows(ids.size());
  for (int32_t i = 0; i < n; ++i) pos[i] = slots[i] = rows[i] = i;
  const std::vector<int32_t> start = {0, n}, ctx = {n}, table = {0, 1, 2, 3};
  CpuBackend be(model, KvPoolShape{4, 4}, options);
  if (options.threads > 0) {
    EXPECT_EQ(be.threads(), options.threads);
  }
  ForwardBatch b;
  b.token_ids = ids;
  b.positions = pos;
  b.seq_start = start;
  b.context_len = ctx;
  b.block_table = table;
  b.max_blocks_per_seq = 4;
  b.slot_mapping = slots;
  b.logits_rows = rows;
  std::vector<float> logits(static_cast<size_t>(n) * be.vocab_size());
  be.forward(b, logits);
  return logits;
}

std::unique_ptr<LoadedModel> glm4_tiny() {
  const auto dir = std::filesystem::path(AUTOGLM_FIXTURES_DIR) / "models" / "glm4-tiny";
  return load_model_directory(dir.string());
}

// Each output row is computed by exactly one thread with the same kernel, so the thread count
// must not change a single bit of the logits.
TEST(CpuBackendThreads, LogitsAreBitIdenticalForAnyThreadCount) {
  const auto model = glm4_tiny();
  const std::vector<float> one = fixture_logits(*model, CpuBackendOptions{1});
  for (int threads : {2, 3}) {
    const std::vector<float> many = fixture_logits(*model, CpuBackendOptions{threads});
    ASSERT_EQ(std::memcmp(one.data(), many.data(), one.size() * 4), 0) << threads;
  }
}

// The whole forward on every ISA this CPU has agrees with the portable kernels (the transformers
// comparison in test_cpu_reference.cpp runs on the best ISA only).
TEST(CpuBackendIsa, EveryIsaGivesTheSameLogitsAsPortable) {
  const auto model = glm4_tiny();
  const std::vector<float> want = fixture_logits(*model, CpuBackendOptions{2, &portable_kernels()});
  for (const SimdKernels* k : available_kernels()) {
    const std::vector<float> got = fixture_logits(*model, CpuBackendOptions{2, k});
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
    }
    EXPECT_LT(worst, 1e-4) << k->isa;
  }
}

}  // namespace
}  // namespace autoglm::cpu
