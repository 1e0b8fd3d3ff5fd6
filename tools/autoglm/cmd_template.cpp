// `autoglm template`: renders a chat template (a .jinja file, or a model directory's
// tokenizer_config.json `chat_template`) with messages/tools from JSON files and prints it.
// Thread ownership: main thread.
#include <cstdio>
#include <string>

#include "commands.h"
#include "core/error.h"
#include "core/json_util.h"
#include "core/mapped_file.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/model_chat_template.h"

namespace autoglm::cli {
namespace {

constexpr size_t kMaxInputBytes = 64u << 20;

struct TemplateOptions {
  std::string template_file;
  std::string model_dir;
  std::string messages_file;
  std::string tools_file;
  bool add_generation_prompt = false;
  bool show_untrusted = false;
};

Json read_json_file(const std::string& path) {
  return parse_json_limited(read_file_capped(path, kMaxInputBytes), path, kDefaultMaxJsonDepth,
                            ErrorCode::kInvalidArgument);
}

int run_template(const TemplateOptions& o) {
  const Json messages = read_json_file(o.messages_file);
  const Json tools = o.tools_file.empty() ? Json() : read_json_file(o.tools_file);
  RenderedPrompt out;
  if (!o.template_file.empty()) {
    const ChatTemplate tmpl =
        ChatTemplate::compile(read_file_capped(o.template_file, kMaxInputBytes), o.template_file);
    out = tmpl.render(messages, tools, o.add_generation_prompt);
  } else {
    const ModelChatTemplate model = load_model_chat_template(o.model_dir);
    out = model.tmpl.render(messages, tools, o.add_generation_prompt, Json::object(),
                            model.model_context);
  }
  std::fwrite(out.text.data(), 1, out.text.size(), stdout);
  if (o.show_untrusted) {
    for (const ByteRange& r : out.untrusted) {
      std::fprintf(stderr, "untrusted [%zu, %zu): %s\n", r.begin, r.end,
                   Json(out.text.substr(r.begin, r.end - r.begin)).dump().c_str());
    }
  }
  return 0;
}

}  // namespace

void register_template(CLI::App& app, int* exit_code) {
  auto opts = std::make_shared<TemplateOptions>();
  CLI::App* cmd =
      app.add_subcommand("template", "Render a chat template with messages (and tools)");
  auto* tf = cmd->add_option("--template", opts->template_file, "Jinja template file");
  auto* md =
      cmd->add_option("--model", opts->model_dir, "Model directory with tokenizer_config.json");
  tf->excludes(md);
  cmd->add_option("--messages", opts->messages_file, "JSON file with the messages array")
      ->required();
  cmd->add_option("--tools", opts->tools_file, "JSON file with the tools array");
  cmd->add_flag("--add-generation-prompt", opts->add_generation_prompt,
                "Append the assistant prompt");
  cmd->add_flag("--show-untrusted", opts->show_untrusted,
                "List on stderr the byte ranges that came from user data");
  cmd->callback([opts, exit_code] {
    if (opts->template_file.empty() && opts->model_dir.empty())
      throw CLI::RequiredError("--template or --model");
    *exit_code = run_template(*opts);
  });
}

}  // namespace autoglm::cli
