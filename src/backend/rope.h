// Rotary-embedding frequencies from a ModelConfig: the plain inv_freq table, linear scaling, and
// Llama-3's frequency-dependent scaling, computed once at load in fp32 as transformers does.
// Shared by every backend. Thread ownership: immutable after construction.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model_config.h"

namespace autoglm {

class RopeTable {
 public:
  explicit RopeTable(const ModelConfig& config);

  int32_t rotary_dim() const { return rotary_dim_; }
  // cos/sin of position `pos` for the rotary_dim/2 frequencies, written to cos[], sin[].
  void angles(int32_t pos, float* cos, float* sin) const;
  const std::vector<float>& inv_freq() const { return inv_freq_; }

 private:
  int32_t rotary_dim_;
  std::vector<float> inv_freq_;
};

}  // namespace autoglm
