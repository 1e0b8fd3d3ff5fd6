// LlamaForCausalLM. From transformers' modeling_llama.py: two pre-norms per layer, separate
// gate_proj/up_proj/down_proj (biases when mlp_bias), q/k/v/o biases when attention_bias,
// NeoX-style RoPE (rotate_half) over the whole head with optional rope scaling (linear or
// llama3), head_dim = hidden_size / num_attention_heads unless given, lm_head possibly tied.
// Thread ownership: none (static data).
#include "model/arch/registry.h"

namespace autoglm {
namespace {

ModelConfig parse_llama(const ConfigReader& config) {
  require_silu_activation(config);
  CommonDefaults defaults;
  defaults.rms_norm_eps = 1e-6;
  ModelConfig m = parse_common_config(config, defaults);
  m.rope_style = RopeStyle::kNeoX;
  m.qkv_bias = config.bool_or("attention_bias", false);
  m.o_bias = m.qkv_bias;
  m.mlp_bias = config.bool_or("mlp_bias", false);
  m.qk_norm = false;
  m.norms_per_layer = 2;
  m.fused_gate_up = false;
  return m;
}

}  // namespace

const ArchSpec& llama_arch() {
  static const ArchSpec spec{"LlamaForCausalLM", "Llama 2/3 (NeoX RoPE, llama3/linear scaling)",
                             &parse_llama, &standard_decoder_tensors};
  return spec;
}

}  // namespace autoglm
