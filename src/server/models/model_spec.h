// The models one server serves, as configured: the `model` setting's entries (`NAME=DIR`, or a
// bare `DIR` named by served_model_name or the directory's name), the preload and pin lists,
// and the memory figures the registry budgets with (an estimate per model before it loads, the
// host's MemAvailable for the CPU backend).
// Thread ownership: pure functions over their arguments (and /proc, the file system), any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "autoglm/engine.h"

namespace autoglm::server::models {

struct ModelSpec {
  std::string name;  // the id clients send as "model"
  std::string dir;   // the model directory
};

// A name a client may send: 1-128 characters of [A-Za-z0-9._:-], not "." or "..", so that a
// name can never be a path (BAD_INPUTS.md 16).
bool valid_model_name(std::string_view name);

// The last component of `dir` ("models/glm/" -> "glm").
std::string directory_name(const std::string& dir);

// Parses the `model` setting: comma-separated entries, each `NAME=DIR` or a bare `DIR`. The
// first bare DIR is named `served_model_name` when that is set, every other bare DIR by its
// directory name. Throws Error(kInvalidArgument) for an empty list, an invalid or duplicate
// name, or an empty directory.
std::vector<ModelSpec> parse_model_specs(const std::string& setting,
                                         const std::string& served_model_name);

// A comma-separated list of model names (preload_models, pinned_models): "all" is every model,
// "none" or "" is none. Throws Error(kInvalidArgument) naming `key` for a name not in `specs`.
std::vector<std::string> resolve_model_list(const std::string& key, const std::string& list,
                                            const std::vector<ModelSpec>& specs);

// The bytes a model is expected to hold once loaded, before it is: its *.safetensors files
// plus the KV pool the engine options ask for (kv_cache_bytes on the CPU). On a GPU the engine
// takes `gpu_engine_bytes` (its memory fraction of the device) at once, whatever the model.
uint64_t estimate_model_bytes(const std::string& dir, const EngineOptions& options,
                              uint64_t gpu_engine_bytes);

// MemAvailable from /proc/meminfo in bytes; 0 when it cannot be read.
uint64_t host_memory_available();

}  // namespace autoglm::server::models
