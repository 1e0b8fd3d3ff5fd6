// `autoglm inspect --model DIR`: loads and validates a model directory and prints what it is
// (architecture, sizes, parameters, dtypes, memory, files, tokenizer and chat-template summary,
// EOS ids). Any problem is an autoglm::Error, which main() prints as one `error:` line.
// Thread ownership: main thread.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "commands.h"
#include "core/json_util.h"
#include "core/mapped_file.h"
#include "model/arch/registry.h"
#include "model/model_dir.h"
#include "tokenizer/model_chat_template.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::cli {
namespace {

std::string base_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return buf;
}

const char* yes_no(bool b) {
  return b ? "yes" : "no";
}

void print_architecture(const LoadedModel& m) {
  const ModelConfig& c = m.config;
  const ArchSpec& arch = find_architecture(c.architecture, m.config_path);
  std::printf("architecture:   %s (%s)\n", c.architecture.c_str(),
              std::string(arch.description).c_str());
  std::printf("layers:         %lld\nhidden:         %lld\nintermediate:   %lld\n",
              static_cast<long long>(c.num_hidden_layers), static_cast<long long>(c.hidden_size),
              static_cast<long long>(c.intermediate_size));
  std::printf(
      "heads:          %lld\nkv heads:       %lld\nhead dim:       %lld\nvocab:          %lld\n",
      static_cast<long long>(c.num_attention_heads), static_cast<long long>(c.num_key_value_heads),
      static_cast<long long>(c.head_dim), static_cast<long long>(c.vocab_size));
  const char* scaling[] = {"none", "linear", "llama3"};
  std::printf("rope:           %s, theta %g, rotary dim %lld (factor %g), scaling %s\n",
              c.rope_style == RopeStyle::kInterleaved ? "interleaved" : "neox", c.rope_theta,
              static_cast<long long>(c.rotary_dim), c.partial_rotary_factor,
              scaling[static_cast<int>(c.rope_scaling.type)]);
  std::printf("max positions:  %lld\n", static_cast<long long>(c.max_position_embeddings));
  std::printf(
      "layout:         %d norms/layer, qkv bias %s, o bias %s, mlp bias %s, qk norm %s, "
      "fused gate_up %s, tied lm_head %s\n",
      c.norms_per_layer, yes_no(c.qkv_bias), yes_no(c.o_bias), yes_no(c.mlp_bias),
      yes_no(c.qk_norm), yes_no(c.fused_gate_up), yes_no(c.tie_word_embeddings));
}

void print_weights(const LoadedModel& m) {
  std::printf("parameters:     %llu\n", static_cast<unsigned long long>(m.weights.parameter_count));
  std::string dtypes;
  for (const auto& [dtype, count] : m.dtype_counts()) {
    dtypes += (dtypes.empty() ? "" : ", ") + std::string(dtype_name(dtype)) + " x" +
              std::to_string(count);
  }
  std::printf("dtypes:         %s\n", dtypes.c_str());
  std::printf("weight memory:  %s (%llu bytes)\n", human_bytes(m.weights.weight_bytes).c_str(),
              static_cast<unsigned long long>(m.weights.weight_bytes));
  std::printf("kv per token:   %llu bytes (%s)\n",
              static_cast<unsigned long long>(m.kv_bytes_per_token()),
              std::string(dtype_name(m.model_dtype())).c_str());
  std::printf("unused tensors: %zu\n", m.weights.unused_tensors.size());
}

void print_files(const LoadedModel& m) {
  std::printf("files:          %s", base_name(m.config_path).c_str());
  if (!m.generation_config_path.empty()) std::printf(", generation_config.json");
  if (!m.index_path.empty()) std::printf(", %s", base_name(m.index_path).c_str());
  std::printf("\n");
  for (const auto& f : m.weight_files) {
    std::printf("  %s: %zu tensors\n", base_name(f->path()).c_str(), f->tensors().size());
  }
}

std::string context_token(const Json& context, const char* key) {
  const auto it = context.find(key);
  return it != context.end() && it->is_string() ? it->get<std::string>() : "-";
}

// Loads the tokenizer and the chat template with the same code the engine uses, and renders
// the template once with a one-message conversation, so that a template that fails, loops or
// explodes is reported at inspection (load) time rather than on the first request.
void print_tokenizer(const LoadedModel& m) {
  const TokenizerFiles& t = m.tokenizer;
  if (t.tokenizer_json.empty()) {
    std::printf("tokenizer:      absent\n");
  } else {
    const Tokenizer tok = Tokenizer::load(t.tokenizer_json);
    std::printf("tokenizer:      tokenizer.json, %zu token ids\n", tok.vocab_size());
  }
  const std::optional<ModelChatTemplate> tmpl = find_model_chat_template(m.directory);
  if (!tmpl) {
    std::printf("chat template:  absent\n");
    return;
  }
  const Json& ctx = tmpl->model_context;
  std::printf("special tokens: bos %s, eos %s, pad %s\n", context_token(ctx, "bos_token").c_str(),
              context_token(ctx, "eos_token").c_str(), context_token(ctx, "pad_token").c_str());
  const Json sample = Json::array({Json{{"role", "user"}, {"content", "Hello"}}});
  const RenderedPrompt rendered =
      tmpl->tmpl.render(sample, Json(), /*add_generation_prompt=*/true, Json::object(), ctx);
  std::printf("chat template:  from %s, renders a one-message chat to %zu bytes\n",
              base_name(tmpl->tmpl.name()).c_str(), rendered.text.size());
}

void run_inspect(const std::string& dir) {
  const auto model = load_model_directory(dir);
  std::printf("model:          %s\n", dir.c_str());
  print_architecture(*model);
  print_weights(*model);
  print_files(*model);
  print_tokenizer(*model);
  std::string eos;
  for (int64_t id : model->config.eos_token_ids) {
    eos += (eos.empty() ? "" : ", ") + std::to_string(id);
  }
  std::printf("eos ids:        %s\n", eos.empty() ? "(none)" : eos.c_str());
}

}  // namespace

void register_inspect(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("inspect", "Validate a model directory and summarize it");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("--model", *dir, "Hugging Face model directory")->required();
  cmd->callback([dir, exit_code] {
    run_inspect(*dir);
    *exit_code = 0;
  });
}

}  // namespace autoglm::cli
