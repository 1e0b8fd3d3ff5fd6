// The architecture table: one ArchSpec per supported Hugging Face architecture, keyed by
// config.architectures[0]. Each arch/<name>.cpp file defines its spec as plain data plus a
// config parser; nothing outside this folder branches on the architecture name.
// Thread ownership: the table is immutable (static) and readable from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/hf_config.h"
#include "model/model_config.h"
#include "model/weights.h"

namespace autoglm {

struct ArchSpec {
  std::string_view name;  // e.g. "Glm4ForCausalLM"
  std::string_view description;
  // Reads config.json (already checked to be an object) into a ModelConfig.
  ModelConfig (*parse)(const ConfigReader& config);
  // Tensors this architecture requires, shaped from the config.
  std::vector<TensorSpec> (*tensors)(const ModelConfig& config);
};

// Architecture specs, one per file in arch/.
const ArchSpec& glm4_arch();
const ArchSpec& glm_arch();
const ArchSpec& llama_arch();
const ArchSpec& qwen2_arch();
const ArchSpec& qwen3_arch();

// The GLM family's config parser (glm.cpp): glm-4-9b-chat-hf as is; GLM-4-0414 adds norms.
ModelConfig parse_glm_family_config(const ConfigReader& config);

// All supported architectures, in a stable order.
const std::vector<const ArchSpec*>& supported_architectures();

// The spec for `name`; throws Error(kUnsupported) listing the supported names if unknown.
const ArchSpec& find_architecture(std::string_view name, const std::string& source);

// Parses config.json text: checks it is an object, reads architectures[0], dispatches to that
// architecture's parser. Works on an in-memory buffer (the fuzz target calls it directly).
ModelConfig parse_model_config(std::string_view text, const std::string& source);

}  // namespace autoglm
