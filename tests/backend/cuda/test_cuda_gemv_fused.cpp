// The decode GEMV's fused epilogues (backend/cuda/gemv.h) against the unfused kernels they
// replace, which have their own host references (test_cuda_gemv, test_cuda_kernels):
// gemv_swiglu against gemv + silu_mul, gemv_fp8_swiglu against gemv_fp8 + silu_mul (an FP8-weight
// model's one- and two-row MLP), and gemv_rope_qkv against gemv + qkv_norm_rope, element
// for element and bit for bit, on GLM's interleaved partial rotary, NeoX full and partial
// rotary, odd intermediate sizes, biases, several rows, the 16-byte and element-wise paths, and a
// padding token (slot -1) whose KV pool rows must stay untouched. Outputs and pools are poisoned
// with NaN first and compared whole, so a stray or missing write fails too.
// Skipped, with a message, when no GPU is present (the argument checks run anyway).
// Thread ownership: the test main thread only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/gemv.h"
#include "backend/cuda/kernels.h"
#include "core/error.h"
#include "cuda_test_util.h"

namespace autoglm::cuda {
namespace {

using test::DeviceArray;

// Equal as stored: the same value, or both NaN (poison nobody wrote).
void expect_same(const std::vector<float>& got, const std::vector<float>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    const bool same = std::isnan(got[i]) ? std::isnan(want[i]) : got[i] == want[i];
    if (!same) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", unfused " << want[i];
      ++bad;
    }
  }
}

DeviceArray poisoned(size_t count, ActType type) {
  DeviceArray a(count, test::act_size(type));
  a.poison();
  return a;
}

class CudaGemvFused : public ::testing::TestWithParam<ActType> {
 protected:
  void SetUp() override { AUTOGLM_SKIP_WITHOUT_GPU(); }
  ActType type() const { return GetParam(); }

  DeviceArray random_act(size_t n) {
    return DeviceArray::of_act(test::random_vector(n, rng_), type());
  }

  void check_swiglu(int64_t m, int64_t inter, int64_t k, bool with_bias) {
    const std::string what = "m " + std::to_string(m) + " inter " + std::to_string(inter) + " k " +
                             std::to_string(k) + (with_bias ? " bias" : "");
    const DeviceArray x = random_act(m * k);
    const DeviceArray w = random_act(2 * inter * k);
    const DeviceArray bias = random_act(2 * inter);
    const void* b = with_bias ? bias.get() : nullptr;
    DeviceArray gate_up = poisoned(m * 2 * inter, type());
    DeviceArray want = poisoned(m * inter, type());
    gemv(x.get(), w.get(), b, gate_up.get(), m, 2 * inter, k, type(), false, nullptr);
    silu_mul(gate_up.get(), static_cast<int32_t>(m), inter, want.get(), type(), nullptr);
    DeviceArray got = poisoned(m * inter, type());
    gemv_swiglu(x.get(), w.get(), b, got.get(), m, inter, k, type(), nullptr);
    expect_same(got.read_act(type()), want.read_act(type()), what);
  }

  // W quantized on the device (quantize_rows_e4m3) from random values.
  void check_fp8_swiglu(int64_t m, int64_t inter, int64_t k, bool with_bias) {
    const std::string what = "fp8 m " + std::to_string(m) + " inter " + std::to_string(inter) +
                             " k " + std::to_string(k) + (with_bias ? " bias" : "");
    const DeviceArray x = random_act(m * k);
    const DeviceArray w = random_act(2 * inter * k);
    DeviceArray w8(2 * inter * k, 1), scales(2 * inter, 4);
    quantize_rows_e4m3(w.get(), type() == ActType::kBF16 ? DType::kBF16 : DType::kF16, 2 * inter, k,
                       w8.get(), scales.as<float>(), nullptr);
    const DeviceArray bias = random_act(2 * inter);
    const void* b = with_bias ? bias.get() : nullptr;
    DeviceArray gate_up = poisoned(m * 2 * inter, type());
    DeviceArray want = poisoned(m * inter, type());
    gemv_fp8(x.get(), w8.get(), scales.as<float>(), b, gate_up.get(), m, 2 * inter, k, type(),
             nullptr);
    silu_mul(gate_up.get(), static_cast<int32_t>(m), inter, want.get(), type(), nullptr);
    DeviceArray got = poisoned(m * inter, type());
    gemv_fp8_swiglu(x.get(), w8.get(), scales.as<float>(), b, got.get(), m, 2 * inter, k, type(),
                    nullptr);
    expect_same(got.read_act(type()), want.read_act(type()), what);
  }

  // Tokens 0..m-1 at random positions; token `padding` (if < m) has no KV slot.
  void check_rope(const QkvLayout& lay, int64_t m, int64_t k, bool with_bias, int64_t padding) {
    const std::string what =
        "heads " + std::to_string(lay.num_heads) + "/" + std::to_string(lay.num_kv_heads) + " hd " +
        std::to_string(lay.head_dim) + " rot " + std::to_string(lay.rotary_dim) +
        (lay.interleaved ? " interleaved" : " neox") + " m " + std::to_string(m) + " k " +
        std::to_string(k);
    const int64_t hd = lay.head_dim;
    const int64_t q_dim = lay.num_heads * hd;
    const int64_t kv_dim = lay.num_kv_heads * hd;
    const int64_t n = q_dim + 2 * kv_dim;
    constexpr int64_t kMaxPos = 97;
    constexpr int64_t kSlots = 11;
    const int64_t half = lay.rotary_dim / 2;
    std::uniform_real_distribution<float> angle(-3.0f, 3.0f);
    std::vector<float> cos_t(kMaxPos * half), sin_t(kMaxPos * half);
    for (size_t i = 0; i < cos_t.size(); ++i) {
      const float a = angle(rng_);
      cos_t[i] = std::cos(a);
      sin_t[i] = std::sin(a);
    }
    std::vector<int32_t> pos(m), slots(m);
    for (int64_t t = 0; t < m; ++t) {
      pos[t] = static_cast<int32_t>((t * 37 + 5) % kMaxPos);
      slots[t] = t == padding ? -1 : static_cast<int32_t>((t * 7 + 3) % kSlots);
    }
    const DeviceArray d_cos = DeviceArray::of_f32(cos_t), d_sin = DeviceArray::of_f32(sin_t);
    const DeviceArray d_pos = DeviceArray::of_i32(pos), d_slots = DeviceArray::of_i32(slots);
    const DeviceArray x = random_act(m * k);
    const DeviceArray w = random_act(n * k);
    const DeviceArray bias = random_act(n);
    const void* b = with_bias ? bias.get() : nullptr;

    DeviceArray qkv = poisoned(m * n, type());
    DeviceArray want_q = poisoned(m * q_dim, type());
    DeviceArray want_k = poisoned(kSlots * kv_dim, type()),
                want_v = poisoned(kSlots * kv_dim, type());
    gemv(x.get(), w.get(), b, qkv.get(), m, n, k, type(), false, nullptr);
    qkv_norm_rope(qkv.get(), d_pos.as<int32_t>(), static_cast<int32_t>(m), lay, nullptr, nullptr,
                  1e-5f, d_cos.as<float>(), d_sin.as<float>(), want_q.get(),
                  KvDestination{want_k.get(), want_v.get(), d_slots.as<int32_t>()}, type(),
                  nullptr);
    DeviceArray got_q = poisoned(m * q_dim, type());
    DeviceArray got_k = poisoned(kSlots * kv_dim, type()),
                got_v = poisoned(kSlots * kv_dim, type());
    gemv_rope_qkv(x.get(), w.get(), b, m, k, lay, d_pos.as<int32_t>(), d_cos.as<float>(),
                  d_sin.as<float>(), got_q.get(),
                  KvDestination{got_k.get(), got_v.get(), d_slots.as<int32_t>()}, type(), nullptr);
    expect_same(got_q.read_act(type()), want_q.read_act(type()), what + ": q");
    expect_same(got_k.read_act(type()), want_k.read_act(type()), what + ": k pool");
    expect_same(got_v.read_act(type()), want_v.read_act(type()), what + ": v pool");

    // Into an FP8 pool (one block of 16 slots; V transposed within it): the same bytes.
    constexpr int32_t kBlock = 16;
    const auto fp8_pools = [&](const auto& write) {
      DeviceArray k8(kBlock * kv_dim, 1), v8(kBlock * kv_dim, 1);
      k8.poison(), v8.poison();
      write(KvDestination{k8.get(), v8.get(), d_slots.as<int32_t>(), true, kBlock});
      return std::make_pair(k8.read_bytes(), v8.read_bytes());
    };
    const auto want8 = fp8_pools([&](const KvDestination& kv) {
      qkv_norm_rope(qkv.get(), d_pos.as<int32_t>(), static_cast<int32_t>(m), lay, nullptr, nullptr,
                    1e-5f, d_cos.as<float>(), d_sin.as<float>(), want_q.get(), kv, type(), nullptr);
    });
    const auto got8 = fp8_pools([&](const KvDestination& kv) {
      gemv_rope_qkv(x.get(), w.get(), b, m, k, lay, d_pos.as<int32_t>(), d_cos.as<float>(),
                    d_sin.as<float>(), got_q.get(), kv, type(), nullptr);
    });
    EXPECT_TRUE(got8.first == want8.first) << what << ": fp8 k pool";
    EXPECT_TRUE(got8.second == want8.second) << what << ": fp8 v pool";
  }

  std::mt19937 rng_{20261122};
};

QkvLayout layout(int32_t heads, int32_t kv_heads, int32_t hd, int32_t rot, bool interleaved) {
  QkvLayout l;
  l.num_heads = heads;
  l.num_kv_heads = kv_heads;
  l.head_dim = hd;
  l.rotary_dim = rot;
  l.interleaved = interleaved;
  return l;
}

TEST_P(CudaGemvFused, SwiGLUMatchesGemvThenSiluMul) {
  // inter odd (the last block holds one output), small, and the 9B's 13,696; k on the 16-byte
  // path (264, 4096) and the element-wise one (4099).
  for (const int64_t m : {1, 3, 8}) {
    check_swiglu(m, 1, 264, true);
    check_swiglu(m, 67, 4099, false);
    check_swiglu(m, 130, 264, true);
  }
  check_swiglu(1, 13696, 4096, false);
}

TEST_P(CudaGemvFused, Fp8SwiGLUMatchesGemvFp8ThenSiluMul) {
  // inter 1 and odd (a block's last outputs past the end of each half), a multiple of four, and
  // the 9B's 13,696; k from one 16-byte chunk to past one sweep of the block.
  for (const int64_t m : {1, 2}) {
    check_fp8_swiglu(m, 1, 16, true);
    check_fp8_swiglu(m, 67, 4112, false);
    check_fp8_swiglu(m, 132, 272, true);
  }
  check_fp8_swiglu(1, 13696, 4096, false);
  check_fp8_swiglu(2, 13696, 4096, true);
}

TEST(CudaGemvFusedArguments, Fp8SwiGLUNeedsAnEvenRowCount) {
  try {
    gemv_fp8_swiglu(nullptr, nullptr, nullptr, nullptr, nullptr, 1, 7, 16, ActType::kBF16, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("n 7 (even)"), std::string::npos) << e.what();
  }
}

TEST_P(CudaGemvFused, RopeQkvMatchesGemvThenQkvRope) {
  // GLM: adjacent pairs over half the head; NeoX over the whole head and over a quarter of it;
  // a rotary size that is a multiple of 4 but not of 8.
  const std::vector<QkvLayout> layouts = {layout(4, 2, 128, 64, true), layout(4, 2, 64, 64, false),
                                          layout(3, 1, 128, 32, false), layout(2, 2, 16, 12, true),
                                          layout(2, 1, 16, 12, false)};
  for (const QkvLayout& lay : layouts) {
    check_rope(lay, 1, 264, true, 1);
    check_rope(lay, 3, 4099, false, 1);  // token 1 is padding
    check_rope(lay, 8, 264, true, 8);
  }
  check_rope(layout(32, 2, 128, 64, true), 1, 4096, true, 1);   // the GLM-4-9B shape
  check_rope(layout(32, 2, 128, 64, true), 1, 4096, false, 0);  // ... a padding token
  check_rope(layout(4, 2, 128, 32, false), 1, 13696, true, 1);  // NeoX, long rows
}

INSTANTIATE_TEST_SUITE_P(Types, CudaGemvFused, ::testing::Values(ActType::kBF16, ActType::kF16),
                         [](const auto& info) { return std::string(test::act_name(info.param)); });

TEST(CudaGemvFusedArguments, RopeNeedsHeadAndRotarySizesInFours) {
  EXPECT_FALSE(gemv_rope_qkv_supported(layout(2, 1, 6, 4, true)));
  EXPECT_FALSE(gemv_rope_qkv_supported(layout(2, 1, 16, 6, false)));
  EXPECT_TRUE(gemv_rope_qkv_supported(layout(2, 1, 16, 12, false)));
  try {
    gemv_rope_qkv(nullptr, nullptr, nullptr, 1, 8, layout(2, 1, 6, 4, true), nullptr, nullptr,
                  nullptr, nullptr, KvDestination{}, ActType::kBF16, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("head_dim 6"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace autoglm::cuda
