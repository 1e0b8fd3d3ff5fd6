// Glm4ForCausalLM (GLM-4-0414, e.g. THUDM/GLM-4-9B-0414). Differences from Llama, taken from
// transformers' modeling_glm4.py: four RMSNorms per layer (input, post_self_attn after the
// attention output, post_attention before the MLP, post_mlp after the MLP), a fused
// gate_up_proj whose first half is the gate, bias on q/k/v only (attention_bias, default true),
// and partial interleaved RoPE: rotary_dim = head_dim * partial_rotary_factor (default 0.5),
// pairs (2i, 2i+1). Thread ownership: none (static data).
#include "model/arch/registry.h"

namespace autoglm {
namespace {

// Same config as glm-4-9b-chat-hf (glm.cpp) plus the two post-norms per layer.
ModelConfig parse_glm4(const ConfigReader& config) {
  ModelConfig m = parse_glm_family_config(config);
  m.norms_per_layer = 4;
  return m;
}

}  // namespace

const ArchSpec& glm4_arch() {
  static const ArchSpec spec{"Glm4ForCausalLM",
                             "GLM-4-0414 (4 norms/layer, partial interleaved RoPE)", &parse_glm4,
                             &standard_decoder_tensors};
  return spec;
}

}  // namespace autoglm
