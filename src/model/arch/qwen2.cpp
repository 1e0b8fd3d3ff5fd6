// Qwen2ForCausalLM. From transformers' modeling_qwen2.py: Llama layout with q/k/v biases always
// present (o_proj has none), NeoX RoPE, lm_head possibly tied. Sliding-window attention is
// refused. Thread ownership: none (static data).
#include "model/arch/registry.h"

namespace autoglm {
namespace {

ModelConfig parse_qwen2(const ConfigReader& config) {
  require_silu_activation(config);
  refuse_sliding_window(config);
  CommonDefaults defaults;
  defaults.rms_norm_eps = 1e-6;
  ModelConfig m = parse_common_config(config, defaults);
  m.rope_style = RopeStyle::kNeoX;
  m.qkv_bias = true;
  m.o_bias = false;
  m.mlp_bias = false;
  m.qk_norm = false;
  m.norms_per_layer = 2;
  m.fused_gate_up = false;
  return m;
}

}  // namespace

const ArchSpec& qwen2_arch() {
  static const ArchSpec spec{"Qwen2ForCausalLM", "Qwen2/2.5 (q/k/v bias, NeoX RoPE)", &parse_qwen2,
                             &standard_decoder_tensors};
  return spec;
}

}  // namespace autoglm
