// See registry.h. Adding an architecture: write arch/<name>.cpp with its ArchSpec, declare
// its accessor in registry.h, and add it to the table below.
#include "model/arch/registry.h"

#include "core/error.h"
#include "model/printable.h"

namespace autoglm {

const std::vector<const ArchSpec*>& supported_architectures() {
  static const std::vector<const ArchSpec*> table = {
      &glm4_arch(), &glm_arch(), &llama_arch(), &qwen2_arch(), &qwen3_arch(),
  };
  return table;
}

const ArchSpec& find_architecture(std::string_view name, const std::string& source) {
  std::string names;
  for (const ArchSpec* spec : supported_architectures()) {
    if (spec->name == name) return *spec;
    names += (names.empty() ? "" : ", ") + std::string(spec->name);
  }
  fail(ErrorCode::kUnsupported, source + ": field 'architectures': '" + printable(name) +
                                    "' is not supported (supported: " + names + ")");
}

ModelConfig parse_model_config(std::string_view text, const std::string& source) {
  const Json j = parse_config_object(text, source);
  const ConfigReader reader(j, source);
  const Json* archs = reader.find("architectures");
  if (archs == nullptr || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
    reader.fail_field("architectures", "expected a non-empty list of architecture names");
  }
  const std::string name = (*archs)[0].get<std::string>();
  const ArchSpec& spec = find_architecture(name, source);
  ModelConfig config = spec.parse(reader);
  config.architecture = name;
  return config;
}

}  // namespace autoglm
