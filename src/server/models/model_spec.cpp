// See model_spec.h. Thread ownership: pure functions, any thread.
#include "server/models/model_spec.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace autoglm::server::models {
namespace {

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> parts;
  std::stringstream stream(list);
  std::string part;
  while (std::getline(stream, part, ',')) {
    part = trim(part);
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == ':';
}

}  // namespace

bool valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), is_name_char);
}

std::string directory_name(const std::string& dir) {
  std::filesystem::path path(dir);
  if (!path.has_filename()) path = path.parent_path();
  return path.filename().string();
}

std::vector<ModelSpec> parse_model_specs(const std::string& setting,
                                         const std::string& served_model_name) {
  std::vector<ModelSpec> specs;
  bool named_bare = false;
  for (const std::string& entry : split_commas(setting)) {
    ModelSpec spec;
    const auto equals = entry.find('=');
    // NAME=DIR only when the left side could be a name: a directory may contain '=' too.
    if (equals != std::string::npos && valid_model_name(trim(entry.substr(0, equals)))) {
      spec.name = trim(entry.substr(0, equals));
      spec.dir = trim(entry.substr(equals + 1));
    } else {
      spec.dir = entry;
      if (!served_model_name.empty() && !named_bare) {
        spec.name = served_model_name;
        named_bare = true;
      } else {
        spec.name = directory_name(entry);
      }
    }
    if (spec.dir.empty()) {
      fail(ErrorCode::kInvalidArgument, "model '" + spec.name + "': the directory is empty");
    }
    if (!valid_model_name(spec.name)) {
      fail(ErrorCode::kInvalidArgument,
           "model name '" + spec.name + "' is not valid: use 1-128 of A-Z a-z 0-9 . _ : -");
    }
    for (const ModelSpec& other : specs) {
      if (other.name == spec.name) {
        fail(ErrorCode::kInvalidArgument,
             "model name '" + spec.name + "' is configured twice; name them NAME=DIR");
      }
    }
    specs.push_back(std::move(spec));
  }
  if (specs.empty()) {
    fail(ErrorCode::kInvalidArgument,
         "no model: set --model, AUTOGLM_MODEL or 'model' in the config file");
  }
  return specs;
}

std::vector<std::string> resolve_model_list(const std::string& key, const std::string& list,
                                            const std::vector<ModelSpec>& specs) {
  std::vector<std::string> names;
  const std::string trimmed = trim(list);
  if (trimmed == "all") {
    for (const ModelSpec& spec : specs) names.push_back(spec.name);
    return names;
  }
  if (trimmed == "none") return names;
  for (const std::string& name : split_commas(trimmed)) {
    const bool known = std::any_of(specs.begin(), specs.end(),
                                   [&](const ModelSpec& spec) { return spec.name == name; });
    if (!known) {
      fail(ErrorCode::kInvalidArgument,
           key + " names '" + name + "', which is not a configured model");
    }
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

uint64_t estimate_model_bytes(const std::string& dir, const EngineOptions& options,
                              uint64_t gpu_engine_bytes) {
  if (gpu_engine_bytes > 0) return gpu_engine_bytes;
  namespace fs = std::filesystem;
  uint64_t bytes = options.kv_cache_bytes;
  std::error_code error;  // an unreadable directory fails at load, with the loader's message
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    if (it->path().extension() != ".safetensors") continue;
    std::error_code size_error;
    const uintmax_t size = it->file_size(size_error);
    if (!size_error) bytes += size;
  }
  return bytes;
}

uint64_t host_memory_available() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

}  // namespace autoglm::server::models
