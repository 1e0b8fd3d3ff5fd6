// See model_dir.h. Order: config first (cheap, and it tells us which tensors to expect), then
// the weight files (mmapped and validated), then binding tensors to the architecture's layout.
#include "model/model_dir.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "core/json_util.h"
#include "core/mapped_file.h"
#include "model/arch/registry.h"
#include "model/hf_config.h"
#include "model/printable.h"

namespace autoglm {
namespace fs = std::filesystem;
namespace {

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string optional_path(const std::string& dir, const char* name) {
  std::string p = dir + "/" + name;
  return is_file(p) ? p : std::string();
}

// Pickle checkpoints run arbitrary code when unpickled; we never open them.
void refuse_pickle_only(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string ext = entry.path().extension().string();
    if (ext == ".bin" || ext == ".pt" || ext == ".pth") {
      fail(ErrorCode::kUnsupported,
           entry.path().string() +
               ": pickle checkpoints are refused because unpickling can execute code on load; "
               "only safetensors weights are accepted (convert with safetensors' convert script)");
    }
  }
  fail(ErrorCode::kNotFound,
       dir + ": no model.safetensors or model.safetensors.index.json in the directory");
}

// weight_map: tensor name -> shard file name.
std::map<std::string, std::string> read_index(const std::string& path) {
  const Json j = parse_json_limited(read_file_capped(path, kMaxIndexBytes), path, 8);
  if (!j.is_object()) fail(ErrorCode::kInvalidModel, path + ": expected a JSON object");
  auto it = j.find("weight_map");
  if (it == j.end() || !it->is_object() || it->empty()) {
    fail(ErrorCode::kInvalidModel, path + ": field 'weight_map': expected a non-empty object");
  }
  std::map<std::string, std::string> map;
  for (const auto& [tensor, shard] : it->items()) {
    if (!shard.is_string()) {
      fail(ErrorCode::kInvalidModel,
           path + ": tensor '" + printable(tensor) + "': shard is not a string");
    }
    check_shard_name(shard.get<std::string>(), path);
    map[tensor] = shard.get<std::string>();
  }
  return map;
}

// Every tensor in the index must be in its named shard, and every tensor of a shard must be
// listed in the index as living in that shard.
void check_index_matches(const std::map<std::string, std::string>& weight_map,
                         const std::map<std::string, const SafetensorsFile*>& shards,
                         const std::string& index_path) {
  for (const auto& [shard_name, file] : shards) {
    std::set<std::string> names;
    for (const SafetensorsTensor& t : file->tensors()) {
      names.insert(t.name);
      auto it = weight_map.find(t.name);
      if (it == weight_map.end() || it->second != shard_name) {
        fail(ErrorCode::kInvalidModel,
             file->path() + ": tensor '" + printable(t.name) + "': " +
                 (it == weight_map.end()
                      ? "not listed in " + index_path
                      : "listed in " + index_path + " as in " + printable(it->second)));
      }
    }
    for (const auto& [tensor, shard] : weight_map) {
      if (shard == shard_name && !names.count(tensor)) {
        fail(ErrorCode::kInvalidModel,
             index_path + ": tensor '" + printable(tensor) + "': not found in " + file->path());
      }
    }
  }
}

void open_weights(LoadedModel& m) {
  const std::string& dir = m.directory;
  m.index_path = optional_path(dir, "model.safetensors.index.json");
  if (m.index_path.empty()) {
    const std::string single = optional_path(dir, "model.safetensors");
    if (single.empty()) refuse_pickle_only(dir);
    m.weight_files.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(single)));
    return;
  }
  const auto weight_map = read_index(m.index_path);
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [tensor, shard] : weight_map) {
    if (shards.count(shard)) continue;
    m.weight_files.push_back(
        std::make_unique<SafetensorsFile>(SafetensorsFile::open(dir + "/" + shard)));
    shards[shard] = m.weight_files.back().get();
  }
  check_index_matches(weight_map, shards, m.index_path);
  std::sort(m.weight_files.begin(), m.weight_files.end(),
            [](const auto& a, const auto& b) { return a->path() < b->path(); });
}

void bind(LoadedModel& m) {
  std::unordered_map<std::string, TensorSource> table;
  std::vector<std::string> names;
  for (const auto& file : m.weight_files) {
    for (const SafetensorsTensor& t : file->tensors()) {
      if (!table.emplace(t.name, TensorSource{t.dtype, &t.shape, file->data(t), &file->path()})
               .second) {
        fail(ErrorCode::kInvalidModel, file->path() + ": tensor '" + printable(t.name) +
                                           "': also present in another weight file");
      }
      names.push_back(t.name);
    }
  }
  const ArchSpec& arch = find_architecture(m.config.architecture, m.config_path);
  const std::string where = m.index_path.empty() ? m.weight_files.front()->path() : m.index_path;
  m.weights = bind_weights(
      m.config, arch.tensors(m.config),
      [&](const std::string& name) -> const TensorSource* {
        auto it = table.find(name);
        return it == table.end() ? nullptr : &it->second;
      },
      names, where);
}

}  // namespace

void check_shard_name(const std::string& name, const std::string& index_path) {
  const bool bad = name.empty() || name.find('/') != std::string::npos ||
                   name.find('\\') != std::string::npos || name.find("..") != std::string::npos ||
                   name.find('\0') != std::string::npos;
  if (bad) {
    fail(ErrorCode::kInvalidModel, index_path + ": shard file name '" + printable(name) +
                                       "' must be a plain file name inside the model directory");
  }
}

std::unique_ptr<LoadedModel> load_model_directory(const std::string& directory) {
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) {
    fail(ErrorCode::kNotFound, directory + ": not a directory");
  }
  auto m = std::make_unique<LoadedModel>();
  m->directory = directory;
  m->config_path = directory + "/config.json";
  m->config = parse_model_config(read_file_capped(m->config_path, kMaxConfigBytes), m->config_path);
  m->generation_config_path = optional_path(directory, "generation_config.json");
  if (!m->generation_config_path.empty()) {
    merge_generation_config(read_file_capped(m->generation_config_path, kMaxGenerationConfigBytes),
                            m->generation_config_path, m->config);
  }
  m->tokenizer.tokenizer_json = optional_path(directory, "tokenizer.json");
  m->tokenizer.tokenizer_config_json = optional_path(directory, "tokenizer_config.json");
  m->tokenizer.chat_template_jinja = optional_path(directory, "chat_template.jinja");
  open_weights(*m);
  bind(*m);
  return m;
}

DType LoadedModel::model_dtype() const {
  return config.torch_dtype.value_or(weights.embed_tokens.dtype);
}

uint64_t LoadedModel::kv_bytes_per_token() const {
  return 2ull * static_cast<uint64_t>(config.num_hidden_layers) *
         static_cast<uint64_t>(config.num_key_value_heads) *
         static_cast<uint64_t>(config.head_dim) * dtype_size(model_dtype());
}

std::map<DType, size_t> LoadedModel::dtype_counts() const {
  std::map<DType, size_t> counts;
  for (const auto& file : weight_files) {
    for (const SafetensorsTensor& t : file->tensors()) ++counts[t.dtype];
  }
  return counts;
}

}  // namespace autoglm
