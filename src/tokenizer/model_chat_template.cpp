// See model_chat_template.h.
#include "tokenizer/model_chat_template.h"

#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"

namespace autoglm {
namespace {

constexpr size_t kMaxTokenizerConfigBytes = 64u << 20;

// tokenizer_config.json spells a special token as a string or as an AddedToken object.
const Json* token_string(const Json& value) {
  if (value.is_string()) return &value;
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return &value["content"];
  }
  return nullptr;
}

std::string template_from_config(const Json& cfg, const std::string& source) {
  const auto it = cfg.find("chat_template");
  if (it == cfg.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const Json& entry : *it) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        return entry["template"].get<std::string>();
      }
    }
  }
  fail(ErrorCode::kTemplate,
       source + ": field 'chat_template' is neither a string nor a list with a 'default' entry");
}

}  // namespace

std::optional<ModelChatTemplate> find_model_chat_template(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const std::string config_path = (fs::path(model_dir) / "tokenizer_config.json").string();
  const std::string jinja_path = (fs::path(model_dir) / "chat_template.jinja").string();
  Json cfg = Json::object();
  if (fs::exists(config_path)) {
    cfg = parse_json_limited(read_file_capped(config_path, kMaxTokenizerConfigBytes), config_path);
    if (!cfg.is_object()) fail(ErrorCode::kInvalidModel, config_path + ": not a JSON object");
  }
  std::string source, name;
  if (fs::exists(jinja_path)) {
    source = read_file_capped(jinja_path, TemplateLimits{}.max_source_bytes);
    name = jinja_path;
  } else {
    source = template_from_config(cfg, config_path);
    name = config_path;
  }
  if (source.empty()) return std::nullopt;
  Json context = Json::object();
  for (const char* key : {"bos_token", "eos_token", "pad_token", "unk_token"}) {
    if (const auto it = cfg.find(key); it != cfg.end()) {
      if (const Json* s = token_string(*it)) context[key] = *s;
    }
  }
  return ModelChatTemplate{ChatTemplate::compile(std::move(source), std::move(name)),
                           std::move(context)};
}

ModelChatTemplate load_model_chat_template(const std::string& model_dir) {
  std::optional<ModelChatTemplate> found = find_model_chat_template(model_dir);
  if (!found) {
    fail(
        ErrorCode::kNotFound,
        model_dir + ": no chat template (looked in chat_template.jinja and tokenizer_config.json)");
  }
  return std::move(*found);
}

std::vector<int32_t> encode_chat_prompt(const ModelChatTemplate& chat_template,
                                        const Tokenizer& tokenizer, const Json& messages,
                                        const Json& tools, bool add_generation_prompt,
                                        const Json& template_kwargs) {
  const RenderedPrompt rendered = chat_template.tmpl.render(
      messages, tools, add_generation_prompt, template_kwargs, chat_template.model_context);
  EncodeOptions options;
  options.special = SpecialTokenPolicy::kExceptUntrusted;
  options.untrusted = rendered.untrusted;
  const std::vector<uint32_t> ids = tokenizer.encode(rendered.text, options);
  return {ids.begin(), ids.end()};
}

}  // namespace autoglm
