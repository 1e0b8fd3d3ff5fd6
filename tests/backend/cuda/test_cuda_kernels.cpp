// Each CUDA backend kernel against the CPU scalar reference kernels (backend/cpu/kernels.h) on
// random inputs of awkward sizes, in BF16 and FP16: inputs are rounded to the storage type on
// the host, the reference runs in fp32 over the rounded values, outputs are poisoned with NaN
// before each launch, and the relative error must stay within 1e-2 (BF16) / 1e-3 (FP16).
// Skipped, with a message, when no GPU is present.
// Thread ownership: the test (or program) main thread only.
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "core/error.h"
#include "cuda_test_util.h"

namespace autoglm::cuda {
namespace {

using test::DeviceArray;
using test::rel_error;
using test::round_to;

class CudaKernels : public ::testing::TestWithParam<ActType> {
 protected:
  void SetUp() override { AUTOGLM_SKIP_WITHOUT_GPU(); }
  ActType type() const { return GetParam(); }
  std::mt19937 rng_{1234};
};

// FP8 E4M3 rows quantized on the host as kernels.h defines it: the same fp32 operations.
struct QuantizedRows {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
};

QuantizedRows quantize_rows_on_host(const std::vector<float>& v, int64_t rows, int64_t cols) {
  QuantizedRows q{std::vector<uint8_t>(v.size()), std::vector<float>(rows)};
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::abs(v[r * cols + c]));
    const float inv = amax > 0.0f ? kE4m3Max / amax : 1.0f;
    q.scales[r] = amax > 0.0f ? amax / kE4m3Max : 1.0f;
    for (int64_t c = 0; c < cols; ++c) {
      q.bytes[r * cols + c] =
          __nv_cvt_float_to_fp8(v[r * cols + c] * inv, __NV_SATFINITE, __NV_E4M3);
    }
  }
  return q;
}

float e4m3_value(uint8_t byte) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(byte, __NV_E4M3)));
}

TEST_P(CudaKernels, ConvertRoundsLikeTheHost) {
  for (size_t n : {size_t{1}, size_t{1000}, size_t{(1u << 20) + 7}}) {
    const std::vector<float> host = test::random_vector(n, rng_, -3.0f, 3.0f);
    DeviceArray src = DeviceArray::of_f32(host);
    DeviceArray dst(n, 2);
    dst.poison();
    const DType dt = type() == ActType::kBF16 ? DType::kBF16 : DType::kF16;
    convert(src.get(), DType::kF32, dst.get(), dt, n, nullptr);
    EXPECT_EQ(dst.read_act(type()), round_to(host, type())) << n;
    DeviceArray back(n, 4);
    back.poison();
    convert(dst.get(), dt, back.get(), DType::kF32, n, nullptr);
    EXPECT_EQ(back.read_f32(), round_to(host, type())) << n;
  }
}

// Widths that are a multiple of 8 take the 16-byte path (4,096: several blocks per token),
// the others one element per access. Ids below zero name the previous step's samples: tokens
// 30, -1 (a non-finite row's: row 0 is read) and 36. embedding_norm against the two launches.
TEST_P(CudaKernels, EmbeddingGatherCopiesRows) {
  const int64_t vocab = 37;
  const std::vector<int32_t> many = {0,
                                     36,
                                     5,
                                     5,
                                     17,
                                     1,
                                     30,
                                     2,
                                     9,
                                     11,
                                     36,
                                     0,
                                     4,
                                     previous_sample_token(0),
                                     previous_sample_token(1),
                                     previous_sample_token(2)};
  std::vector<RowSample> samples(3);
  samples[0].token = 30;
  samples[1].token = -1;
  samples[2].token = 36;
  const auto token_of = [&](int32_t id) {
    const int32_t token = id >= 0 ? id : samples[static_cast<size_t>(-1 - id)].token;
    return token >= 0 && token < vocab ? token : 0;
  };
  DeviceArray d_samples(samples.size(), sizeof(RowSample));
  AUTOGLM_CUDA_CHECK(cudaMemcpy(d_samples.get(), samples.data(), samples.size() * sizeof(RowSample),
                                cudaMemcpyHostToDevice));
  for (const auto& [hidden, ids] : {std::pair<int64_t, std::vector<int32_t>>{129, many},
                                    {256, many},
                                    {4096, {36}},
                                    {4096, many}}) {
    SCOPED_TRACE(std::to_string(hidden) + " x " + std::to_string(ids.size()));
    const std::vector<float> table = round_to(test::random_vector(vocab * hidden, rng_), type());
    DeviceArray d_table = DeviceArray::of_act(table, type());
    DeviceArray d_ids = DeviceArray::of_i32(ids);
    DeviceArray x(ids.size() * hidden, 4);
    x.poison();
    const EmbeddingSource source{d_ids.as<int32_t>(), d_samples.as<RowSample>(), vocab,
                                 d_table.get()};
    embedding_gather(source, static_cast<int32_t>(ids.size()), type(), hidden, x.as<float>(),
                     nullptr);
    std::vector<float> want;
    for (int32_t id : ids) {
      const int64_t row = token_of(id);
      want.insert(want.end(), &table[row * hidden], &table[(row + 1) * hidden]);
    }
    EXPECT_EQ(x.read_f32(), want);
    // The step's first norm with the gather inside it: the same x, and bit for bit the norm
    // residual_add_norm makes of it (with its FP8 rows too).
    const int32_t rows = static_cast<int32_t>(ids.size());
    const std::vector<float> norm_w = test::random_vector(hidden, rng_, 0.5f, 1.5f);
    DeviceArray d_norm = DeviceArray::of_f32(norm_w), want_out(ids.size() * hidden, 2);
    DeviceArray want_bytes(ids.size() * hidden, 1), want_scales(ids.size(), 4);
    residual_add_norm(x.as<float>(), Delta{}, nullptr, d_norm.as<float>(), want_out.get(), rows,
                      hidden, 1e-5f, type(), nullptr,
                      Fp8Rows{want_bytes.get(), want_scales.as<float>()});
    DeviceArray x2(ids.size() * hidden, 4), out(ids.size() * hidden, 2);
    DeviceArray bytes(ids.size() * hidden, 1), scales(ids.size(), 4);
    x2.poison();
    out.poison();
    embedding_norm(source, rows, d_norm.as<float>(), x2.as<float>(), out.get(), hidden, 1e-5f,
                   type(), nullptr, Fp8Rows{bytes.get(), scales.as<float>()});
    EXPECT_EQ(x2.read_f32(), want);
    EXPECT_EQ(out.read_act(type()), want_out.read_act(type()));
    EXPECT_EQ(bytes.read_bytes(), want_bytes.read_bytes());
    EXPECT_EQ(scales.read_f32(), want_scales.read_f32());
  }
}

// The largest relative error of any one row: a single wrong row among thousands still fails.
double worst_row_error(const std::vector<float>& got, const std::vector<float>& want,
                       int64_t hidden) {
  if (got.size() != want.size()) return INFINITY;
  double worst = 0.0;
  for (size_t begin = 0; begin < want.size(); begin += hidden) {
    const std::vector<float> got_row(got.begin() + begin, got.begin() + begin + hidden);
    const std::vector<float> want_row(want.begin() + begin, want.begin() + begin + hidden);
    worst = std::max(worst, rel_error(got_row, want_row));
  }
  return worst;
}

struct NormCase {
  int64_t hidden;
  int32_t rows;
  bool delta, post, norm;
  int32_t parts = 0;  // the delta as this many fp32 parts (Delta::parts) instead of one array
};

// Widths that are a multiple of 4 take the vector path, others one element per access; one row
// (batch-1 decode: 1,024 threads, weights preloaded), wide rows (more elements per thread, the
// weights loaded after the reductions), 129-511 rows (a 256-row decode step: twice the elements
// a thread, weights preloaded) and 512+ rows (prefill: 256-thread blocks).
TEST_P(CudaKernels, ResidualAddNormMatchesRmsNorm) {
  const float eps = 1e-5f;
  for (const NormCase c :
       {NormCase{64, 7, false, false, true}, NormCase{257, 7, true, false, true},
        NormCase{4099, 7, true, true, true}, NormCase{1000, 7, true, true, false},
        NormCase{96, 7, true, false, false}, NormCase{4096, 1, true, true, true},
        NormCase{4096, 1, false, false, true}, NormCase{12288, 2, true, true, true},
        NormCase{10001, 1, true, true, true}, NormCase{1024, 4096, true, true, true},
        NormCase{4096, 300, true, false, true}, NormCase{4099, 256, true, true, true},
        NormCase{4096, 256, true, true, true}, NormCase{4096, 520, true, true, true},
        NormCase{4096, 256, true, true, true, 2}, NormCase{4096, 64, true, false, true, 2},
        NormCase{257, 7, true, false, true, 2}, NormCase{4096, 1, true, true, true, 2},
        NormCase{1000, 7, true, true, false, 3}}) {
    SCOPED_TRACE(std::to_string(c.hidden) + " x " + std::to_string(c.rows) +
                 (c.delta ? " delta" : "") + (c.post ? " post" : "") + (c.norm ? " norm" : "") +
                 (c.parts > 0 ? " in " + std::to_string(c.parts) + " parts" : ""));
    const int32_t rows = c.rows;
    const size_t n = rows * c.hidden;
    std::vector<float> x = test::random_vector(n, rng_, -2.0f, 2.0f);
    const std::vector<float> x_in = x;
    // Parts: [parts][rows][hidden] fp32, summed in order (as the kernel adds them) and rounded
    // to the storage type.
    const std::vector<float> parts = test::random_vector(n * c.parts, rng_, -0.5f, 0.5f);
    std::vector<float> delta = round_to(test::random_vector(n, rng_), type());
    if (c.parts > 0) {
      for (size_t i = 0; i < n; ++i) {
        float sum = 0.0f;
        for (int32_t p = 0; p < c.parts; ++p) sum += parts[p * n + i];
        delta[i] = sum;
      }
      delta = round_to(delta, type());
    }
    const DeviceArray d_parts = DeviceArray::of_f32(c.parts > 0 ? parts : std::vector<float>{0});
    const std::vector<float> post_w = test::random_vector(c.hidden, rng_, 0.5f, 1.5f);
    const std::vector<float> norm_w = test::random_vector(c.hidden, rng_, 0.5f, 1.5f);
    DeviceArray d_x = DeviceArray::of_f32(x), d_delta = DeviceArray::of_act(delta, type());
    DeviceArray d_post = DeviceArray::of_f32(post_w), d_norm = DeviceArray::of_f32(norm_w);
    DeviceArray out(n, 2);
    out.poison();
    const Delta d_in = !c.delta      ? Delta{}
                       : c.parts > 0 ? Delta{nullptr, d_parts.as<float>(), c.parts}
                                     : Delta{d_delta.get()};
    residual_add_norm(d_x.as<float>(), d_in, c.post ? d_post.as<float>() : nullptr,
                      c.norm ? d_norm.as<float>() : nullptr, out.get(), rows, c.hidden, eps, type(),
                      nullptr);
    // Reference: the CPU backend's sequence (post-norm of the delta, add, norm).
    std::vector<float> d = delta;
    if (c.post) cpu::rms_norm(d.data(), rows, c.hidden, post_w.data(), eps, d.data());
    if (c.delta) {
      for (size_t i = 0; i < n; ++i) x[i] += d[i];
    }
    EXPECT_LT(worst_row_error(d_x.read_f32(), x, c.hidden), 1e-5);
    if (c.norm) {
      std::vector<float> want(n);
      cpu::rms_norm(x.data(), rows, c.hidden, norm_w.data(), eps, want.data());
      EXPECT_LT(worst_row_error(out.read_act(type()), want, c.hidden), test::tolerance(type()));
      // Again with its FP8 rows (an FP8-weight model's next projection input): the same output,
      // and the bytes and scales quantize_rows_e4m3 would make from it.
      DeviceArray x2 = DeviceArray::of_f32(x_in), out2(n, 2), bytes(n, 1), scales(rows, 4);
      out2.poison();
      bytes.poison();
      residual_add_norm(x2.as<float>(), d_in, c.post ? d_post.as<float>() : nullptr,
                        d_norm.as<float>(), out2.get(), rows, c.hidden, eps, type(), nullptr,
                        Fp8Rows{bytes.get(), scales.as<float>()});
      const std::vector<float> got = out2.read_act(type());
      EXPECT_EQ(got, out.read_act(type()));
      const QuantizedRows q = quantize_rows_on_host(got, rows, c.hidden);
      EXPECT_EQ(bytes.read_bytes(), q.bytes);
      EXPECT_EQ(scales.read_f32(), q.scales);
    }
  }
  try {
    residual_add_norm(nullptr, Delta{}, nullptr, nullptr, nullptr, 1, 64, 1e-5f, type(), nullptr,
                      Fp8Rows{reinterpret_cast<void*>(16), reinterpret_cast<float*>(16)});
    FAIL() << "FP8 rows without a norm: no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST_P(CudaKernels, GatherRmsNormPicksRows) {
  const int32_t tokens = 11;
  std::vector<int32_t> many(300);
  for (size_t r = 0; r < many.size(); ++r) many[r] = static_cast<int32_t>((r * 7) % tokens);
  for (const auto& [hidden, rows] :
       {std::pair<int64_t, std::vector<int32_t>>{300, {10, 0, 3, 3, 7}},
        {301, {10, 0, 3, 3, 7}},
        {4096, {5}},
        {512, many}}) {
    SCOPED_TRACE(std::to_string(hidden) + " x " + std::to_string(rows.size()));
    const std::vector<float> x = test::random_vector(tokens * hidden, rng_, -3.0f, 3.0f);
    const std::vector<float> w = test::random_vector(hidden, rng_, 0.5f, 1.5f);
    DeviceArray d_x = DeviceArray::of_f32(x), d_w = DeviceArray::of_f32(w);
    DeviceArray d_rows = DeviceArray::of_i32(rows);
    DeviceArray out(rows.size() * hidden, 2);
    out.poison();
    gather_rms_norm(d_x.as<float>(), d_rows.as<int32_t>(), static_cast<int32_t>(rows.size()),
                    hidden, d_w.as<float>(), 1e-6f, out.get(), type(), nullptr);
    std::vector<float> want(rows.size() * hidden);
    for (size_t r = 0; r < rows.size(); ++r) {
      cpu::rms_norm(x.data() + rows[r] * hidden, 1, hidden, w.data(), 1e-6f,
                    want.data() + r * hidden);
    }
    EXPECT_LT(worst_row_error(out.read_act(type()), want, hidden), test::tolerance(type()));
    EXPECT_EQ(d_x.read_f32(), x);  // the source rows stay as they were
  }
}

struct QkvCase {
  QkvLayout layout;
  bool qk_norm;
};

TEST_P(CudaKernels, QkvNormRopeMatchesCpuRope) {
  const int32_t n = 19, max_pos = 300;
  const float eps = 1e-6f;
  for (const QkvCase c :
       {QkvCase{{4, 2, 16, 8, true}, true}, QkvCase{{32, 2, 128, 64, true}, false},
        QkvCase{{12, 4, 64, 64, false}, true}, QkvCase{{5, 1, 80, 40, false}, false},
        QkvCase{{8, 8, 256, 256, false}, true},
        // The vector kernel's layouts (head_dim 64 / 128): NeoX partners 16 and 8 lanes apart,
        // GLM pairs over part of a 64-dim head; then NeoX halves of 62 (not whole lanes apart),
        // which take the general kernel.
        QkvCase{{16, 4, 128, 128, false}, true}, QkvCase{{8, 2, 128, 64, false}, false},
        QkvCase{{6, 2, 64, 32, true}, true}, QkvCase{{4, 2, 128, 124, false}, true}}) {
    const QkvLayout& L = c.layout;
    SCOPED_TRACE("heads " + std::to_string(L.num_heads) + "/" + std::to_string(L.num_kv_heads) +
                 " hd " + std::to_string(L.head_dim) + " rd " + std::to_string(L.rotary_dim) +
                 (L.interleaved ? " interleaved" : " neox") + (c.qk_norm ? " qk_norm" : ""));
    const int32_t hd = L.head_dim, half = L.rotary_dim / 2;
    const int32_t total = L.num_heads + 2 * L.num_kv_heads;
    const std::vector<float> qkv = round_to(test::random_vector(n * total * hd, rng_), type());
    std::vector<float> angles = test::random_vector(max_pos * half, rng_, -3.2f, 3.2f);
    std::vector<float> cos(angles.size()), sin(angles.size());
    for (size_t i = 0; i < angles.size(); ++i)
      cos[i] = std::cos(angles[i]), sin[i] = std::sin(angles[i]);
    std::vector<int32_t> pos(n);
    for (int32_t& p : pos) p = static_cast<int32_t>(rng_() % max_pos);
    const std::vector<float> qn = test::random_vector(hd, rng_, 0.5f, 1.5f);
    const std::vector<float> kn = test::random_vector(hd, rng_, 0.5f, 1.5f);
    DeviceArray d_qkv = DeviceArray::of_act(qkv, type()), d_pos = DeviceArray::of_i32(pos);
    DeviceArray d_cos = DeviceArray::of_f32(cos), d_sin = DeviceArray::of_f32(sin);
    DeviceArray d_qn = DeviceArray::of_f32(qn), d_kn = DeviceArray::of_f32(kn);
    DeviceArray q(n * L.num_heads * hd, 2), k(n * L.num_kv_heads * hd, 2),
        v(n * L.num_kv_heads * hd, 2);
    q.poison(), k.poison(), v.poison();
    qkv_norm_rope(d_qkv.get(), d_pos.as<int32_t>(), n, L, c.qk_norm ? d_qn.as<float>() : nullptr,
                  c.qk_norm ? d_kn.as<float>() : nullptr, eps, d_cos.as<float>(), d_sin.as<float>(),
                  q.get(), KvDestination{k.get(), v.get(), nullptr}, type(), nullptr);
    std::vector<float> wq, wk, wv;
    const auto rotate = L.interleaved ? cpu::rope_interleaved : cpu::rope_neox;
    for (int32_t t = 0; t < n; ++t) {
      for (int32_t h = 0; h < total; ++h) {
        std::vector<float> head(&qkv[(t * total + h) * hd], &qkv[(t * total + h + 1) * hd]);
        const bool is_v = h >= L.num_heads + L.num_kv_heads;
        const bool is_q = h < L.num_heads;
        if (!is_v) {
          if (c.qk_norm) {
            cpu::rms_norm(head.data(), 1, hd, is_q ? qn.data() : kn.data(), eps, head.data());
          }
          rotate(head.data(), L.rotary_dim, &cos[pos[t] * half], &sin[pos[t] * half]);
        }
        auto& dst = is_q ? wq : (is_v ? wv : wk);
        dst.insert(dst.end(), head.begin(), head.end());
      }
    }
    EXPECT_LT(rel_error(q.read_act(type()), wq), test::tolerance(type()));
    EXPECT_LT(rel_error(k.read_act(type()), wk), test::tolerance(type()));
    EXPECT_EQ(v.read_act(type()), wv);

    // Fused with the KV write: token t's k and v land in pool row slots[t]; the last token is
    // padding (slot -1) and writes nothing, and the rows no token maps to stay poisoned.
    const int32_t kv_dim = L.num_kv_heads * hd, pool_rows = n + 3;
    std::vector<int32_t> slots(n);
    for (int32_t t = 0; t < n; ++t) slots[t] = (t * 7 + 2) % pool_rows;
    slots[n - 1] = -1;
    DeviceArray d_slots = DeviceArray::of_i32(slots);
    DeviceArray k_pool(pool_rows * kv_dim, 2), v_pool(pool_rows * kv_dim, 2);
    k_pool.poison(), v_pool.poison();
    qkv_norm_rope(d_qkv.get(), d_pos.as<int32_t>(), n, L, c.qk_norm ? d_qn.as<float>() : nullptr,
                  c.qk_norm ? d_kn.as<float>() : nullptr, eps, d_cos.as<float>(), d_sin.as<float>(),
                  q.get(), KvDestination{k_pool.get(), v_pool.get(), d_slots.as<int32_t>()}, type(),
                  nullptr);
    const std::vector<float> k_rows = k_pool.read_act(type()), v_rows = v_pool.read_act(type());
    const std::vector<float> k_arr = k.read_act(type());
    std::vector<bool> written(pool_rows, false);
    for (int32_t t = 0; t + 1 < n; ++t) {
      written[slots[t]] = true;
      for (int32_t i = 0; i < kv_dim; ++i) {
        ASSERT_EQ(k_rows[slots[t] * kv_dim + i], k_arr[t * kv_dim + i]) << "token " << t;
        ASSERT_EQ(v_rows[slots[t] * kv_dim + i], wv[t * kv_dim + i]) << "token " << t;
      }
    }
    for (int32_t r = 0; r < pool_rows; ++r) {
      if (!written[r]) {
        EXPECT_TRUE(std::isnan(k_rows[r * kv_dim]) && std::isnan(v_rows[r * kv_dim]));
      }
    }

    // Into an FP8 pool of blocks of 16 (K per block and head with permuted chunks, V transposed
    // within each block; attention.h): the same values, each rounded once to E4M3; unwritten
    // slots keep the poison byte.
    constexpr int32_t kBlock = 16;
    const int32_t fp8_rows = (pool_rows + kBlock - 1) / kBlock * kBlock;
    DeviceArray k8(fp8_rows * kv_dim, 1), v8(fp8_rows * kv_dim, 1);
    k8.poison(), v8.poison();
    qkv_norm_rope(d_qkv.get(), d_pos.as<int32_t>(), n, L, c.qk_norm ? d_qn.as<float>() : nullptr,
                  c.qk_norm ? d_kn.as<float>() : nullptr, eps, d_cos.as<float>(), d_sin.as<float>(),
                  q.get(), KvDestination{k8.get(), v8.get(), d_slots.as<int32_t>(), true, kBlock},
                  type(), nullptr);
    const std::vector<uint8_t> k_bytes = k8.read_bytes(), v_bytes = v8.read_bytes();
    const auto e4m3 = [](float x) { return __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3); };
    for (int32_t r = 0; r < fp8_rows; ++r) {
      const int32_t block = r / kBlock;
      for (int32_t i = 0; i < kv_dim; ++i) {
        const uint8_t k_got =
            k_bytes[fp8_k_offset(block, i / hd, r % kBlock, i % hd, L.num_kv_heads, hd, kBlock)];
        const uint8_t v_got = v_bytes[(block * kv_dim + i) * kBlock + r % kBlock];
        if (r < pool_rows && written[r]) {
          const int32_t t =
              static_cast<int32_t>(std::find(slots.begin(), slots.end(), r) - slots.begin());
          // K: rotated in fp32 and rounded once; the reference rounds the BF16/FP16 result,
          // which can differ by one E4M3 step where the fp32 value sat near a tie.
          const float k_ref = wk[t * kv_dim + i];
          const float k_val = __half2float(__half(__nv_cvt_fp8_to_halfraw(k_got, __NV_E4M3)));
          ASSERT_NEAR(k_val, k_ref, std::abs(k_ref) / 8 + 1.0f / 512) << "token " << t;
          ASSERT_EQ(v_got, e4m3(wv[t * kv_dim + i])) << "token " << t << " v " << i;
        } else {
          ASSERT_EQ(k_got, 0xFF);
          ASSERT_EQ(v_got, 0xFF);
        }
      }
    }
  }
}

TEST_P(CudaKernels, SiluMulOverFusedGateUp) {
  // 13,696 and 264 take the 16-byte path, 300 and 129 one element per access; 70,000 tokens
  // are more than one grid row of blocks per token (65,535).
  for (const auto& [n, inter] :
       {std::pair<int32_t, int64_t>{1, 13696}, {11, 300}, {64, 129}, {4096, 264}, {70000, 8}}) {
    SCOPED_TRACE(std::to_string(n) + " x " + std::to_string(inter));
    const std::vector<float> gu =
        round_to(test::random_vector(n * 2 * inter, rng_, -4.0f, 4.0f), type());
    DeviceArray d_gu = DeviceArray::of_act(gu, type());
    DeviceArray out(n * inter, 2);
    out.poison();
    silu_mul(d_gu.get(), n, inter, out.get(), type(), nullptr);
    std::vector<float> want(n * inter);
    for (int32_t t = 0; t < n; ++t) {
      cpu::silu_mul(&gu[t * 2 * inter], &gu[t * 2 * inter + inter], &want[t * inter], inter);
    }
    EXPECT_LT(rel_error(out.read_act(type()), want), test::tolerance(type()));
  }
}

TEST_P(CudaKernels, GemmMatchesCpuLinear) {
  DeviceBuffer ws(Gemm::kWorkspaceBytes, "gemm workspace");
  Gemm gemm(ws.get(), ws.bytes());
  for (const auto& [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 4096, 512},
                                {7, 136, 200},
                                {67, 520, 1032},
                                {300, 64, 64}}) {
    for (const bool with_bias : {false, true}) {
      for (const bool out_f32 : {false, true}) {
        SCOPED_TRACE(std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
                     (with_bias ? " bias" : "") + (out_f32 ? " f32-out" : ""));
        const std::vector<float> x = round_to(test::random_vector(m * k, rng_), type());
        const std::vector<float> w = round_to(test::random_vector(n * k, rng_), type());
        const std::vector<float> b = round_to(test::random_vector(n, rng_), type());
        DeviceArray d_x = DeviceArray::of_act(x, type()), d_w = DeviceArray::of_act(w, type());
        // The bias is in the output type.
        DeviceArray d_b = out_f32 ? DeviceArray::of_f32(b) : DeviceArray::of_act(b, type());
        DeviceArray y(m * n, out_f32 ? 4 : 2);
        y.poison();
        gemm.linear(d_x.get(), d_w.get(), with_bias ? d_b.get() : nullptr, y.get(), m, n, k, type(),
                    out_f32, nullptr);
        std::vector<float> want(m * n), scratch(k);
        const cpu::WeightMatrix wm{DType::kF32, w.data(), n, k};
        const cpu::WeightMatrix bm{DType::kF32, with_bias ? b.data() : nullptr, 1, n};
        cpu::linear(x.data(), m, wm, bm, want.data(), scratch.data());
        const std::vector<float> got = out_f32 ? y.read_f32() : y.read_act(type());
        EXPECT_LT(rel_error(got, want), out_f32 ? 1e-4 : test::tolerance(type()));
      }
    }
  }
}

// Widths that are a multiple of the vector width take the vector path, 1,001 one element per
// access; row 1 is all zeros (scale 1), and an fp32 source (weights of an F32 checkpoint) too.
TEST_P(CudaKernels, QuantizeRowsE4m3MatchesTheHost) {
  const DType act = type() == ActType::kBF16 ? DType::kBF16 : DType::kF16;
  for (const bool f32_source : {false, true}) {
    for (const auto& [rows, cols] :
         {std::pair<int64_t, int64_t>{1, 4096}, {3, 8}, {37, 1001}, {5, 13696}}) {
      SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols) + (f32_source ? " f32" : ""));
      std::vector<float> x = test::random_vector(rows * cols, rng_, -3.0f, 3.0f);
      if (rows > 1) std::fill_n(x.begin() + cols, cols, 0.0f);
      if (!f32_source) x = round_to(x, type());
      DeviceArray src = f32_source ? DeviceArray::of_f32(x) : DeviceArray::of_act(x, type());
      DeviceArray dst(rows * cols, 1), scales(rows, 4);
      dst.poison();
      scales.poison();
      quantize_rows_e4m3(src.get(), f32_source ? DType::kF32 : act, rows, cols, dst.get(),
                         scales.as<float>(), nullptr);
      const QuantizedRows want = quantize_rows_on_host(x, rows, cols);
      EXPECT_EQ(dst.read_bytes(), want.bytes);
      EXPECT_EQ(scales.read_f32(), want.scales);
    }
  }
}

// The FP8 matmul over operands quantized on the device, against the host's product of the same
// bytes and scales (the quantization itself is checked above).
TEST_P(CudaKernels, Fp8GemmMatchesTheHostOverQuantizedOperands) {
  DeviceBuffer ws(Gemm::kWorkspaceBytes, "gemm workspace");
  Gemm gemm(ws.get(), ws.bytes());
  const DType act = type() == ActType::kBF16 ? DType::kBF16 : DType::kF16;
  for (const auto& [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 4096, 512},
                                {2, 4608, 4096},
                                {7, 136, 208},
                                {67, 520, 1024},
                                {300, 64, 64}}) {
    for (const bool with_bias : {false, true}) {
      SCOPED_TRACE(std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
                   (with_bias ? " bias" : ""));
      const std::vector<float> x = round_to(test::random_vector(m * k, rng_, -2.0f, 2.0f), type());
      const std::vector<float> w = round_to(test::random_vector(n * k, rng_, -0.1f, 0.1f), type());
      const std::vector<float> b = round_to(test::random_vector(n, rng_), type());
      DeviceArray d_x = DeviceArray::of_act(x, type()), d_w = DeviceArray::of_act(w, type());
      DeviceArray d_b = DeviceArray::of_act(b, type());
      DeviceArray x8(m * k, 1), w8(n * k, 1), x_scale(m, 4), w_scale(n, 4);
      quantize_rows_e4m3(d_x.get(), act, m, k, x8.get(), x_scale.as<float>(), nullptr);
      quantize_rows_e4m3(d_w.get(), act, n, k, w8.get(), w_scale.as<float>(), nullptr);
      DeviceArray y(m * n, 2);
      y.poison();
      gemm.linear_fp8(x8.get(), x_scale.as<float>(), w8.get(), w_scale.as<float>(),
                      with_bias ? d_b.get() : nullptr, y.get(), m, n, k, type(), nullptr);
      const std::vector<uint8_t> xq = x8.read_bytes(), wq = w8.read_bytes();
      const std::vector<float> xs = x_scale.read_f32(), wsc = w_scale.read_f32();
      std::vector<float> want(m * n);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0;
          for (int64_t c = 0; c < k; ++c) {
            acc += double{e4m3_value(xq[i * k + c])} * e4m3_value(wq[j * k + c]);
          }
          want[i * n + j] = static_cast<float>(acc * xs[i] * wsc[j] + (with_bias ? b[j] : 0.0f));
        }
      }
      EXPECT_LT(rel_error(y.read_act(type()), want), test::tolerance(type()));
    }
  }
  try {
    gemm.linear_fp8(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 4, 8, 72, type(),
                    nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

// Each part is the product over its slice of K alone (checked against the CPU over that slice),
// so a part landing in the wrong place or covering the wrong columns fails, not only the sum.
TEST_P(CudaKernels, GemmKSplitPartsMatchCpuLinearOverTheirSlices) {
  DeviceBuffer ws(Gemm::kWorkspaceBytes, "gemm workspace");
  Gemm gemm(ws.get(), ws.bytes());
  for (const auto& [m, n, k, parts] : {std::tuple<int64_t, int64_t, int64_t, int>{2, 4096, 512, 2},
                                       {67, 520, 1024, 2},
                                       {256, 136, 13696, 2},
                                       {9, 64, 96, 3}}) {
    SCOPED_TRACE(std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + " in " +
                 std::to_string(parts));
    const std::vector<float> x = round_to(test::random_vector(m * k, rng_), type());
    const std::vector<float> w = round_to(test::random_vector(n * k, rng_), type());
    DeviceArray d_x = DeviceArray::of_act(x, type()), d_w = DeviceArray::of_act(w, type());
    DeviceArray y(parts * m * n, 4);
    y.poison();
    gemm.linear_k_split(d_x.get(), d_w.get(), y.as<float>(), m, n, k, parts, type(), nullptr);
    const std::vector<float> got = y.read_f32();
    const int64_t part_k = k / parts;
    for (int p = 0; p < parts; ++p) {
      std::vector<float> xs(m * part_k), ws_part(n * part_k), want(m * n), scratch(part_k);
      for (int64_t r = 0; r < m; ++r) {
        std::copy_n(&x[r * k + p * part_k], part_k, &xs[r * part_k]);
      }
      for (int64_t r = 0; r < n; ++r) {
        std::copy_n(&w[r * k + p * part_k], part_k, &ws_part[r * part_k]);
      }
      const cpu::WeightMatrix wm{DType::kF32, ws_part.data(), n, part_k};
      const cpu::WeightMatrix none{DType::kF32, nullptr, 1, n};
      cpu::linear(xs.data(), m, wm, none, want.data(), scratch.data());
      const std::vector<float> got_part(got.begin() + p * m * n, got.begin() + (p + 1) * m * n);
      EXPECT_LT(rel_error(got_part, want), 1e-4) << "part " << p;
    }
  }
  try {
    gemm.linear_k_split(nullptr, nullptr, nullptr, 4, 8, 100, 2, type(), nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

// Causal attention of each new token over its sequence's keys in the paged pool, in fp32 on
// the host: the reference for the plain paged attention kernel.
std::vector<float> host_attention(const std::vector<int32_t>& seq_start,
                                  const std::vector<int32_t>& context,
                                  const std::vector<int32_t>& table, int32_t max_blocks, int32_t bs,
                                  const std::vector<float>& q, const std::vector<float>& k_pool,
                                  const std::vector<float>& v_pool, const AttentionShape& shape) {
  const int32_t heads = shape.num_heads, hd = shape.head_dim;
  const int32_t kv_dim = shape.num_kv_heads * hd;
  std::vector<float> want(static_cast<size_t>(seq_start.back()) * heads * hd, 0.0f);
  for (size_t s = 0; s + 1 < seq_start.size(); ++s) {
    const int32_t* row = &table[s * max_blocks];
    const int32_t new_tokens = seq_start[s + 1] - seq_start[s];
    for (int32_t j = 0; j < new_tokens; ++j) {
      const int32_t t = seq_start[s] + j;
      const int32_t visible = context[s] - new_tokens + j + 1;
      for (int32_t h = 0; h < heads; ++h) {
        const int32_t kv_off = h / (heads / shape.num_kv_heads) * hd;
        std::vector<float> scores(visible);
        for (int32_t p = 0; p < visible; ++p) {
          const int32_t slot = row[p / bs] * bs + p % bs;
          float dot = 0;
          for (int32_t d = 0; d < hd; ++d) {
            dot += q[(t * heads + h) * hd + d] * k_pool[slot * kv_dim + kv_off + d];
          }
          scores[p] = dot * shape.scale;
        }
        cpu::softmax(scores.data(), visible);
        for (int32_t p = 0; p < visible; ++p) {
          const int32_t slot = row[p / bs] * bs + p % bs;
          for (int32_t d = 0; d < hd; ++d) {
            want[(t * heads + h) * hd + d] += scores[p] * v_pool[slot * kv_dim + kv_off + d];
          }
        }
      }
    }
  }
  return want;
}

// A ragged batch over a paged pool: sequences with cached prefixes and new tokens, blocks
// scattered over the pool; the host reference attends over the same rounded keys and values.
TEST_P(CudaKernels, PlainPagedAttentionMatchesHostAttention) {
  struct Seq {
    int32_t context, new_tokens;
  };
  const std::vector<Seq> seqs = {{1, 1}, {17, 1}, {40, 7}, {33, 33}, {16, 16}, {100, 3}};
  for (const auto& [heads, kv_heads, hd] :
       {std::tuple<int32_t, int32_t, int32_t>{4, 2, 16}, {8, 8, 32}, {32, 2, 128}}) {
    SCOPED_TRACE(std::to_string(heads) + "/" + std::to_string(kv_heads) + " hd " +
                 std::to_string(hd));
    const int32_t bs = 16, pool_blocks = 64, kv_dim = kv_heads * hd;
    const int32_t max_blocks = 8;
    std::vector<int32_t> seq_start = {0}, context, table, slots;
    int32_t next_block = 0;
    for (const Seq& s : seqs) {
      seq_start.push_back(seq_start.back() + s.new_tokens);
      context.push_back(s.context);
      for (int32_t b = 0; b < max_blocks; ++b) {
        table.push_back((next_block++ * 37 + 5) % pool_blocks);  // scattered, distinct
      }
      const int32_t* row = &table[table.size() - max_blocks];
      for (int32_t p = s.context - s.new_tokens; p < s.context; ++p) {
        slots.push_back(row[p / bs] * bs + p % bs);
      }
    }
    const int32_t n = seq_start.back();
    const std::vector<float> k_pool =
        round_to(test::random_vector(pool_blocks * bs * kv_dim, rng_), type());
    const std::vector<float> v_pool =
        round_to(test::random_vector(pool_blocks * bs * kv_dim, rng_), type());
    const std::vector<float> q = round_to(test::random_vector(n * heads * hd, rng_), type());
    DeviceArray dk = DeviceArray::of_act(k_pool, type()), dv = DeviceArray::of_act(v_pool, type());
    DeviceArray dq = DeviceArray::of_act(q, type());
    DeviceArray d_start = DeviceArray::of_i32(seq_start), d_ctx = DeviceArray::of_i32(context);
    DeviceArray d_table = DeviceArray::of_i32(table), d_slots = DeviceArray::of_i32(slots);
    DeviceArray out(n * heads * hd, 2);
    out.poison();
    AttentionBatch batch;
    batch.seq_start = d_start.as<int32_t>();
    batch.context_len = d_ctx.as<int32_t>();
    batch.block_table = d_table.as<int32_t>();
    batch.slot_mapping = d_slots.as<int32_t>();
    batch.max_blocks_per_seq = max_blocks;
    batch.n_tokens = n;
    batch.n_seqs = static_cast<int32_t>(seqs.size());
    batch.max_query_len = 33;
    batch.max_context_len = 100;
    batch.block_size = bs;
    const AttentionShape shape{heads, kv_heads, hd, 1.0f / std::sqrt(static_cast<float>(hd))};
    paged_attention_plain(batch, shape, dq.get(), PagedKvLayer{dk.get(), dv.get()}, out.get(),
                          type(), nullptr);
    const std::vector<float> want =
        host_attention(seq_start, context, table, max_blocks, bs, q, k_pool, v_pool, shape);
    EXPECT_LT(rel_error(out.read_act(type()), want), test::tolerance(type()));
  }
}

INSTANTIATE_TEST_SUITE_P(Types, CudaKernels, ::testing::Values(ActType::kBF16, ActType::kF16),
                         [](const auto& info) { return std::string(test::act_name(info.param)); });

}  // namespace
}  // namespace autoglm::cuda
