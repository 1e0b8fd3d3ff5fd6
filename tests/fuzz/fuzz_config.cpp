// libFuzzer target: arbitrary bytes as config.json. parse_model_config must either produce a
// ModelConfig whose derived sizes are consistent, or throw autoglm::Error. The same bytes are
// also fed to merge_generation_config.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/error.h"
#include "model/arch/registry.h"
#include "model/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    autoglm::ModelConfig c = autoglm::parse_model_config(text, "config.json");
    if (c.head_dim <= 0 || c.rotary_dim > c.head_dim || c.rotary_dim % 2 != 0 ||
        c.num_attention_heads % c.num_key_value_heads != 0) {
      std::abort();
    }
    // Exercise the tensor table on the parsed config (shapes must be computable).
    const auto& arch = autoglm::find_architecture(c.architecture, "config.json");
    if (c.num_hidden_layers <= 4) (void)arch.tensors(c);
  } catch (const autoglm::Error&) {
  }
  try {
    autoglm::ModelConfig c;
    autoglm::merge_generation_config(text, "generation_config.json", c);
  } catch (const autoglm::Error&) {
  }
  return 0;
}
