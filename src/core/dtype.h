// Element types of weights and activations, with their safetensors names and sizes, and
// scalar conversions to fp32. Thread ownership: none (pure functions).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace autoglm {

enum class DType : uint8_t { kF32, kF16, kBF16, kI8, kF8E4M3 };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // safetensors spelling: F32, F16, BF16, I8, F8_E4M3
// Parses a safetensors dtype string; nullopt for anything this engine does not load.
std::optional<DType> parse_weight_dtype(std::string_view s);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float f16_to_f32(uint16_t h);

}  // namespace autoglm
