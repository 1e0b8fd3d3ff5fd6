// The decode GEMV (backend/cuda/gemv.h) against a host reference computed in double over the
// same BF16/FP16-rounded inputs: m = 1, 2, 3, 8; N not a multiple of the kernel's 4-row tile;
// K of 0, 1, under 8, not a multiple of 8 (the element-wise path), and multiples of 8 that end
// mid-sweep or need several sweeps of the block (the 16-byte path); bias on and off; outputs in
// the activation type and in fp32; unaligned x and W. Outputs are poisoned with NaN first, and
// poisoned guard elements either side of y must still be NaN afterwards (no stray writes).
// Checks: the relative error (norm-wise) within 1e-2 (BF16) / 1e-3 (FP16) for activation
// outputs and 1e-5 for fp32 ones; and per element, within half an output ulp plus 1e-4 of the
// reference's RMS (the fp32 accumulation's slack), so one wrong element fails too.
// Skipped, with a message, when no GPU is present (the argument checks run anyway).
// Thread ownership: the test main thread only.
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/gemv.h"
#include "backend/cuda/kernels.h"
#include "core/error.h"
#include "cuda_test_util.h"

namespace autoglm::cuda {
namespace {

using test::DeviceArray;

struct Shape {
  int64_t m = 1, n = 1, k = 1;
};

std::string describe(const Shape& s, bool out_f32, bool bias) {
  std::ostringstream os;
  os << "m " << s.m << " n " << s.n << " k " << s.k << (out_f32 ? " out fp32" : " out act")
     << (bias ? " bias" : " no bias");
  return os.str();
}

// Host values exactly as the device holds them.
struct Problem {
  Shape shape;
  std::vector<float> x, w, bias;  // bias empty: none
};

Problem make_problem(const Shape& s, ActType type, bool out_f32, bool with_bias,
                     std::mt19937& rng) {
  Problem p;
  p.shape = s;
  p.x = test::round_to(test::random_vector(s.m * s.k, rng), type);
  p.w = test::round_to(test::random_vector(s.n * s.k, rng), type);
  if (with_bias) {
    p.bias = test::random_vector(s.n, rng);
    if (!out_f32) p.bias = test::round_to(p.bias, type);  // the bias is in y's type
  }
  return p;
}

std::vector<double> reference(const Problem& p) {
  const Shape& s = p.shape;
  std::vector<double> y(s.m * s.n);
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      double sum = p.bias.empty() ? 0.0 : p.bias[j];
      for (int64_t t = 0; t < s.k; ++t) sum += double{p.x[i * s.k + t]} * p.w[j * s.k + t];
      y[i * s.n + j] = sum;
    }
  }
  return y;
}

// A device copy of `host` in `type` that starts `offset` elements into its allocation (an
// odd offset makes the pointer unaligned).
struct OffsetArray {
  DeviceArray array;
  const void* data;
};
OffsetArray upload_at(const std::vector<float>& host, ActType type, int64_t offset) {
  std::vector<float> padded(offset, 0.0f);
  padded.insert(padded.end(), host.begin(), host.end());
  if (padded.empty()) padded.push_back(0.0f);  // k == 0: nothing is read, but keep a real copy
  DeviceArray a = DeviceArray::of_act(padded, type);
  const void* data = static_cast<const char*>(a.get()) + offset * test::act_size(type);
  return {std::move(a), data};
}

constexpr int64_t kGuard = 40;  // poisoned elements before and after y

// Runs gemv on the problem; fails the test if a guard element was written.
std::vector<float> run(const Problem& p, ActType type, bool out_f32, int64_t x_offset = 0,
                       int64_t w_offset = 0) {
  const Shape& s = p.shape;
  const OffsetArray x = upload_at(p.x, type, x_offset);
  const OffsetArray w = upload_at(p.w, type, w_offset);
  DeviceArray bias(1, 4);
  if (!p.bias.empty()) {
    bias = out_f32 ? DeviceArray::of_f32(p.bias) : DeviceArray::of_act(p.bias, type);
  }
  const size_t out_size = out_f32 ? 4 : test::act_size(type);
  DeviceArray y(s.m * s.n + 2 * kGuard, out_size);
  y.poison();
  gemv(x.data, w.data, p.bias.empty() ? nullptr : bias.get(),
       static_cast<char*>(y.get()) + kGuard * out_size, s.m, s.n, s.k, type, out_f32, nullptr);
  const std::vector<float> all = out_f32 ? y.read_f32() : y.read_act(type);
  for (int64_t i = 0; i < kGuard; ++i) {
    EXPECT_TRUE(std::isnan(all[i])) << "written before y, at -" << kGuard - i;
    EXPECT_TRUE(std::isnan(all[kGuard + s.m * s.n + i])) << "written past y's end, at +" << i;
  }
  return std::vector<float>(all.begin() + kGuard, all.end() - kGuard);
}

// Half an ulp of the output type, relative: the rounding of a correct fp32 sum.
double half_ulp(ActType type, bool out_f32) {
  if (out_f32) return 0x1p-24;
  return type == ActType::kBF16 ? 0x1p-8 : 0x1p-11;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, ActType type,
                  bool out_f32, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double sum_sq = 0;
  for (double v : want) sum_sq += v * v;
  const double rms = want.empty() ? 0.0 : std::sqrt(sum_sq / static_cast<double>(want.size()));
  const double rel_ulp = half_ulp(type, out_f32);
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    const double bound = rel_ulp * std::fabs(want[i]) * 1.001 + 1e-4 * rms;
    if (!std::isfinite(got[i]) || std::fabs(got[i] - want[i]) > bound) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", want " << want[i]
                    << " (bound " << bound << ")";
      ++bad;
    }
  }
  const std::vector<float> want_f(want.begin(), want.end());
  const double tol = out_f32 ? 1e-5 : test::tolerance(type);
  EXPECT_LE(test::rel_error(got, want_f), tol) << what;
}

TEST(CudaGemvArguments, RejectsBadShapesBeforeTouchingTheDevice) {
  // No device pointers are needed: the checks come before any CUDA call, so this runs
  // without a GPU as well.
  for (const Shape s : {Shape{9, 4, 8}, Shape{-1, 4, 8}, Shape{1, -1, 8}, Shape{1, 4, -1}}) {
    try {
      gemv(nullptr, nullptr, nullptr, nullptr, s.m, s.n, s.k, ActType::kBF16, false, nullptr);
      ADD_FAILURE() << "accepted " << describe(s, false, false);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    }
  }
  // Nothing to compute: no launch, no error.
  EXPECT_NO_THROW(
      gemv(nullptr, nullptr, nullptr, nullptr, 0, 4, 8, ActType::kBF16, false, nullptr));
  EXPECT_NO_THROW(gemv(nullptr, nullptr, nullptr, nullptr, 3, 0, 8, ActType::kF16, true, nullptr));
}

class CudaGemv : public ::testing::TestWithParam<ActType> {
 protected:
  void SetUp() override { AUTOGLM_SKIP_WITHOUT_GPU(); }
  ActType type() const { return GetParam(); }

  void check(const Shape& s, bool out_f32, bool with_bias, int64_t x_offset = 0,
             int64_t w_offset = 0) {
    const std::string what = describe(s, out_f32, with_bias) + " x+" + std::to_string(x_offset) +
                             " w+" + std::to_string(w_offset);
    const Problem p = make_problem(s, type(), out_f32, with_bias, rng_);
    expect_close(run(p, type(), out_f32, x_offset, w_offset), reference(p), type(), out_f32, what);
  }

  std::mt19937 rng_{20261122};
};

TEST_P(CudaGemv, MatchesTheHostReferenceOnAwkwardShapes) {
  // (n, k): k = 0 (bias only); 1 and 13 (under one 16-byte chunk); 4099 (k % 8 != 0: the
  // element-wise path); 264 (33 chunks: most threads idle); 4104 (513 chunks: one thread
  // needs a second sweep of the block); n = 1, 3, 5, 67, 130, 257 (partial last tile of 4).
  const std::vector<std::pair<int64_t, int64_t>> nk = {{5, 0},    {1, 1},      {3, 13},
                                                       {67, 264}, {130, 4099}, {257, 4104}};
  for (const int64_t m : {1, 2, 3, 8}) {
    for (const auto& [n, k] : nk) {
      for (const bool out_f32 : {false, true}) {
        for (const bool with_bias : {false, true}) check(Shape{m, n, k}, out_f32, with_bias);
      }
    }
  }
}

TEST_P(CudaGemv, LongRowsAndManyBlocks) {
  // K = 16,384 (the longest row the brief names: 4 sweeps of 2,048 elements per row), the 9B's
  // down projection's 13,696 (a last sweep that most threads sit out) and a 9B-shaped qkv
  // projection with its bias; then 10,001 rows of K = 64 (2,501 blocks, the last holding one
  // row).
  for (const int64_t m : {1, 3, 5, 8}) {  // 3-8 rows with k % 64 == 0: the tensor-core path
    check(Shape{m, 37, 16384}, false, false);
    check(Shape{m, 301, 13696}, false, true);
    check(Shape{m, 4608, 4096}, false, true);
    check(Shape{m, 10001, 64}, true, true);
  }
}

TEST_P(CudaGemv, UnalignedPointersGiveTheSameResult) {
  // K % 8 == 0, but x or W starts 2 or 8 bytes past a 16-byte boundary: the element-wise path.
  for (const int64_t offset : {1, 4}) {
    check(Shape{3, 37, 264}, false, true, offset, 0);
    check(Shape{3, 37, 264}, true, false, 0, offset);
    check(Shape{8, 37, 264}, false, false, offset, offset);
  }
  // An aligned 8-element offset still takes the 16-byte path.
  check(Shape{2, 37, 264}, false, true, 8, 8);
}

// A [rows][cols] matrix quantized on the device (quantize_rows_e4m3, checked bit for bit in
// test_cuda_kernels): its bytes and scales, and the values they stand for (byte * row scale).
struct QuantizedOnDevice {
  DeviceArray bytes, scales;
  std::vector<float> values;
};

QuantizedOnDevice quantize_on_device(const std::vector<float>& host, int64_t rows, int64_t cols,
                                     ActType type) {
  const DeviceArray src = DeviceArray::of_act(host, type);
  QuantizedOnDevice q{DeviceArray(rows * cols, 1), DeviceArray(rows, 4), {}};
  quantize_rows_e4m3(src.get(), type == ActType::kBF16 ? DType::kBF16 : DType::kF16, rows, cols,
                     q.bytes.get(), q.scales.as<float>(), nullptr);
  const std::vector<uint8_t> bytes = q.bytes.read_bytes();
  const std::vector<float> scale = q.scales.read_f32();
  q.values.resize(bytes.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const __half h(__nv_cvt_fp8_to_halfraw(bytes[r * cols + c], __NV_E4M3));
      q.values[r * cols + c] = __half2float(h) * scale[r];
    }
  }
  return q;
}

// The FP8-weight GEMVs against the host over the quantized values, with the same bounds as the
// GEMV's above: one and two rows (gemv_fp8: x as it is), three to eight (gemv_fp8_mma: x
// quantized too). n not a multiple of the tiles, K from one 16-byte chunk (128 bytes for the
// tensor-core form) to the 9B's down projection; bias on and off.
TEST_P(CudaGemv, Fp8WeightsMatchTheHostOverTheQuantizedValues) {
  const std::vector<std::pair<int64_t, int64_t>> nk = {
      {1, 128}, {37, 256}, {67, 4096}, {4608, 4096}, {301, 13696}};
  for (const int64_t m : {1, 2, 3, 5, 8}) {
    for (const auto& [n, k] : nk) {
      for (const bool with_bias : {false, true}) {
        Problem p = make_problem(Shape{m, n, k}, type(), false, with_bias, rng_);
        const QuantizedOnDevice w = quantize_on_device(p.w, n, k, type());
        const DeviceArray x = DeviceArray::of_act(p.x, type());
        DeviceArray bias = with_bias ? DeviceArray::of_act(p.bias, type()) : DeviceArray(1, 4);
        DeviceArray y(m * n, test::act_size(type()));
        y.poison();
        const void* b = with_bias ? bias.get() : nullptr;
        p.w = w.values;
        if (m <= kGemvFp8MaxRows) {
          gemv_fp8(x.get(), w.bytes.get(), w.scales.as<float>(), b, y.get(), m, n, k, type(),
                   nullptr);
        } else {
          const QuantizedOnDevice xq = quantize_on_device(p.x, m, k, type());
          gemv_fp8_mma(xq.bytes.get(), xq.scales.as<float>(), w.bytes.get(), w.scales.as<float>(),
                       b, y.get(), m, n, k, type(), nullptr);
          p.x = xq.values;
        }
        expect_close(y.read_act(type()), reference(p), type(), false,
                     "fp8 " + describe(p.shape, false, with_bias));
      }
    }
  }
  for (const auto& [m, k] : {std::pair<int64_t, int64_t>{3, 64}, {0, 64}, {1, 24}}) {
    try {
      gemv_fp8(nullptr, nullptr, nullptr, nullptr, nullptr, m, 8, k, type(), nullptr);
      ADD_FAILURE() << "m " << m << " k " << k << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    }
  }
  for (const auto& [m, k] : {std::pair<int64_t, int64_t>{2, 128}, {9, 128}, {4, 192}}) {
    try {
      gemv_fp8_mma(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, m, 8, k, type(), nullptr);
      ADD_FAILURE() << "mma m " << m << " k " << k << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, CudaGemv, ::testing::Values(ActType::kBF16, ActType::kF16),
                         [](const auto& info) { return std::string(test::act_name(info.param)); });

}  // namespace
}  // namespace autoglm::cuda
