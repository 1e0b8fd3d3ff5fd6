// Typed views of a model's weight tensors, as the backends will consume them: one TensorView
// per global tensor and per (layer, role). Views point into memory-mapped safetensors files and
// are valid while the LoadedModel that produced them lives. bind_weights() checks that every
// tensor the architecture requires is present with the expected shape.
// Thread ownership: immutable after load; readable from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/model_config.h"

namespace autoglm {

struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;         // nullptr: the tensor is absent (role unused by this arch)
  const std::string* file = nullptr;  // file the bytes live in, for error messages
  std::string name;

  bool present() const { return data != nullptr; }
  uint64_t element_count() const;
  uint64_t byte_size() const { return element_count() * dtype_size(dtype); }
};

// Per-layer roles. Which exist depends on ModelConfig flags (biases, qk_norm, norms, fusion).
enum class LayerTensor : uint8_t {
  kInputNorm,          // input_layernorm            [hidden]
  kPostSelfAttnNorm,   // post_self_attn_layernorm   [hidden]  (norms_per_layer == 4)
  kPostAttentionNorm,  // post_attention_layernorm   [hidden]  (pre-MLP norm)
  kPostMlpNorm,        // post_mlp_layernorm         [hidden]  (norms_per_layer == 4)
  kQ,
  kQBias,
  kK,
  kKBias,
  kV,
  kVBias,
  kO,
  kOBias,
  kQNorm,
  kKNorm,   // [head_dim] (qk_norm)
  kGateUp,  // [2*inter, hidden] (fused_gate_up): rows [0, inter) are the gate
  kGate,
  kGateBias,
  kUp,
  kUpBias,
  kDown,
  kDownBias,
  kCount,
};
inline constexpr size_t kLayerTensorCount = static_cast<size_t>(LayerTensor::kCount);

enum class GlobalTensor : uint8_t { kEmbedTokens, kFinalNorm, kLmHead, kCount };

struct LayerWeights {
  std::array<TensorView, kLayerTensorCount> tensors;
  const TensorView& operator[](LayerTensor r) const { return tensors[static_cast<size_t>(r)]; }
};

struct ModelWeights {
  TensorView embed_tokens;  // [vocab, hidden]
  TensorView final_norm;    // [hidden]
  TensorView lm_head;       // [vocab, hidden]; equals embed_tokens when tied
  std::vector<LayerWeights> layers;
  std::vector<std::string> unused_tensors;  // present in files, not used by the architecture
  uint64_t parameter_count = 0;             // of used tensors; a tied lm_head counted once
  uint64_t weight_bytes = 0;                // of used tensors
};

// One tensor an architecture requires: its HF name, expected shape, and where it goes.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  int layer = -1;    // -1: global
  uint8_t role = 0;  // GlobalTensor when layer == -1, else LayerTensor
};

// The tensors of the standard HF decoder layout (model.embed_tokens, model.layers.N.*,
// model.norm, lm_head), selected and shaped by the config's flags. lm_head is left out
// when tie_word_embeddings is set.
std::vector<TensorSpec> standard_decoder_tensors(const ModelConfig& config);

// What a weight file offers for one tensor name.
struct TensorSource {
  DType dtype;
  const std::vector<int64_t>* shape;
  const void* data;
  const std::string* file;
};

// Binds every spec to a tensor found by `lookup` (nullptr result = absent), checking shapes.
// `all_names` lists every tensor in the files, to count the unused ones. `where` names the
// weight file(s) in errors about missing tensors.
ModelWeights bind_weights(const ModelConfig& config, const std::vector<TensorSpec>& specs,
                          const std::function<const TensorSource*(const std::string&)>& lookup,
                          const std::vector<std::string>& all_names, const std::string& where);

}  // namespace autoglm
