// See kernels.h.
#include "backend/cpu/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace autoglm::cpu {

void load_row(const WeightMatrix& w, int64_t row, float* out) {
  const int64_t n = w.cols;
  switch (w.dtype) {
    case DType::kF32:
      std::memcpy(out, static_cast<const float*>(w.data) + row * n, n * sizeof(float));
      return;
    case DType::kBF16: {
      const auto* src = static_cast<const uint16_t*>(w.data) + row * n;
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(src[i]);
      return;
    }
    case DType::kF16: {
      const auto* src = static_cast<const uint16_t*>(w.data) + row * n;
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(src[i]);
      return;
    }
    default:
      std::fill(out, out + n, 0.0f);  // quantized types never reach the fp32 path
  }
}

void linear(const float* x, int64_t n_tokens, const WeightMatrix& w, const WeightMatrix& bias,
            float* y, float* scratch) {
  const int64_t in = w.cols;
  const int64_t out = w.rows;
  float bias_value = 0.0f;
  for (int64_t o = 0; o < out; ++o) {
    load_row(w, o, scratch);
    if (!bias.empty()) load_row(WeightMatrix{bias.dtype, bias.data, bias.cols, 1}, o, &bias_value);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * in;
      float acc = 0.0f;
      for (int64_t i = 0; i < in; ++i) acc += xt[i] * scratch[i];
      y[t * out + o] = acc + bias_value;
    }
  }
}

void rms_norm(const float* x, int64_t n_rows, int64_t dim, const float* weight, float eps,
              float* y) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double ss = 0.0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / dim) + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = weight[i] * (xr[i] * inv);
  }
}

void rope_neox(float* head, int32_t rotary_dim, const float* cos, const float* sin) {
  const int32_t half = rotary_dim / 2;
  for (int32_t j = 0; j < half; ++j) {
    const float a = head[j];
    const float b = head[j + half];
    head[j] = a * cos[j] - b * sin[j];
    head[j + half] = b * cos[j] + a * sin[j];
  }
}

void rope_interleaved(float* head, int32_t rotary_dim, const float* cos, const float* sin) {
  for (int32_t j = 0; j < rotary_dim / 2; ++j) {
    const float a = head[2 * j];
    const float b = head[2 * j + 1];
    head[2 * j] = a * cos[j] - b * sin[j];
    head[2 * j + 1] = b * cos[j] + a * sin[j];
  }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void softmax(float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace autoglm::cpu
