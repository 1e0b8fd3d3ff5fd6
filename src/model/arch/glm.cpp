// GlmForCausalLM (glm-4-9b-chat-hf). From transformers' modeling_glm.py: two RMSNorms per layer
// (Llama-style pre-norms), fused gate_up_proj (gate first), bias on q/k/v (attention_bias,
// default true) but not o_proj, and partial interleaved RoPE (partial_rotary_factor default
// 0.5, pairs (2i, 2i+1)). Thread ownership: none (static data).
#include "model/arch/registry.h"

namespace autoglm {

ModelConfig parse_glm_family_config(const ConfigReader& config) {
  require_silu_activation(config);
  CommonDefaults defaults;
  defaults.partial_rotary_factor = 0.5;
  defaults.rms_norm_eps = 1.5625e-07;
  defaults.head_dim = 128;
  ModelConfig m = parse_common_config(config, defaults);
  m.rope_style = RopeStyle::kInterleaved;
  m.qkv_bias = config.bool_or("attention_bias", true);
  m.o_bias = false;
  m.mlp_bias = false;
  m.qk_norm = false;
  m.norms_per_layer = 2;
  m.fused_gate_up = true;
  return m;
}

const ArchSpec& glm_arch() {
  static const ArchSpec spec{"GlmForCausalLM",
                             "GLM-4 9B chat, HF layout (partial interleaved RoPE)",
                             &parse_glm_family_config, &standard_decoder_tensors};
  return spec;
}

}  // namespace autoglm
