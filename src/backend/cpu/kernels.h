// Scalar-reference CPU kernels for the transformer forward in fp32 over F32/F16/BF16 weights:
// linear layers, RMSNorm, rotary embeddings (NeoX and GLM's partial interleaved), SwiGLU and
// softmax. They are the correctness baseline the vectorised/threaded kernels are checked
// against. Thread ownership: pure functions; callers partition work across threads.
#pragma once

#include <cstdint>
#include <span>

#include "core/dtype.h"

namespace autoglm::cpu {

// A weight matrix [rows, cols] in row-major order, rows = output features (HF nn.Linear layout).
// A vector (norm weight, bias) is a matrix with rows == 1.
struct WeightMatrix {
  DType dtype = DType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  bool empty() const { return data == nullptr; }
};

// Converts row `row` of `w` to fp32 into out[0..cols).
void load_row(const WeightMatrix& w, int64_t row, float* out);

// y[t, o] = sum_i x[t, i] * w[o, i] (+ bias[o]) for t < n_tokens. `scratch` holds w.cols floats.
void linear(const float* x, int64_t n_tokens, const WeightMatrix& w, const WeightMatrix& bias,
            float* y, float* scratch);

// y = x / sqrt(mean(x^2) + eps) * weight, over rows of length `dim` (y may alias x).
void rms_norm(const float* x, int64_t n_rows, int64_t dim, const float* weight, float eps,
              float* y);

// Rotates pairs (i, i + rotary_dim/2) of each head: Llama/Qwen "rotate_half" style.
void rope_neox(float* head, int32_t rotary_dim, const float* cos, const float* sin);
// Rotates adjacent pairs (2j, 2j+1) of the first rotary_dim dims: GLM's partial interleaved.
void rope_interleaved(float* head, int32_t rotary_dim, const float* cos, const float* sin);

// out[i] = silu(gate[i]) * up[i]
void silu_mul(const float* gate, const float* up, float* out, int64_t n);

// In-place softmax over x[0..n).
void softmax(float* x, int64_t n);

}  // namespace autoglm::cpu
