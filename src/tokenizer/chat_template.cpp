// ChatTemplate (see chat_template.h): lex + parse once at compile time, evaluate per render.
// Thread ownership: immutable after compile; render() is reentrant.
#include "tokenizer/chat_template.h"

#include "core/error.h"
#include "tokenizer/jinja/evaluator.h"
#include "tokenizer/jinja/parser.h"

namespace autoglm {

struct ChatTemplate::Impl {
  std::string name;
  TemplateLimits limits;
  jinja::LexResult lexed;
  jinja::Body body;
};

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
const std::string& ChatTemplate::name() const {
  return impl_->name;
}

ChatTemplate ChatTemplate::compile(std::string source, std::string name, TemplateLimits limits) {
  if (source.size() > limits.max_source_bytes) {
    fail(ErrorCode::kTemplate, name + ": template source size limit exceeded (" +
                                   std::to_string(source.size()) + " > " +
                                   std::to_string(limits.max_source_bytes) + " bytes)");
  }
  auto impl = std::make_unique<Impl>();
  impl->name = std::move(name);
  impl->limits = limits;
  impl->lexed = jinja::lex_template(source, impl->name);
  impl->body =
      jinja::parse_template(impl->lexed, impl->name, jinja::ParseLimits{limits.max_nesting});
  return ChatTemplate(std::move(impl));
}

namespace {

// A role that is a plain identifier cannot spell or break a control token by itself: the most
// it can do is name another role, which callers validate. Templates such as glm-4-9b-chat's
// build the control token around the role ("<|" + role + "|>"), so such roles are trusted;
// anything else in a message stays untrusted.
bool is_identifier_role(std::string_view role) {
  if (role.empty() || role.size() > 32) return false;
  for (char c : role) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) return false;
  }
  return true;
}

jinja::Value messages_value(const Json& messages) {
  jinja::Value value = jinja::from_json(messages, /*untrusted=*/true);
  if (!value.is_list()) return value;
  for (const jinja::Value& message : value.list()) {
    if (!message.is_dict()) continue;
    const jinja::Value* role = message.dict().find("role");
    if (role != nullptr && role->is_string() && is_identifier_role(role->str().text)) {
      message.dict().set(jinja::PStr::trusted("role"), jinja::PStr::trusted(role->str().text));
    }
  }
  return value;
}

}  // namespace

RenderedPrompt ChatTemplate::render(const Json& messages, const Json& tools,
                                    bool add_generation_prompt, const Json& extra_context,
                                    const Json& model_context) const {
  std::unordered_map<std::string, jinja::Value> globals;
  const auto add_globals = [&](const Json& context, bool untrusted) {
    if (!context.is_object()) return;
    for (auto it = context.begin(); it != context.end(); ++it) {
      globals[it.key()] = jinja::from_json(it.value(), untrusted);
    }
  };
  add_globals(model_context, /*untrusted=*/false);
  add_globals(extra_context, /*untrusted=*/true);
  globals["messages"] = messages_value(messages);
  globals["tools"] = tools.is_null() ? jinja::Value(nullptr) : jinja::from_json(tools, true);
  globals["documents"] = jinja::Value(nullptr);
  globals["add_generation_prompt"] = jinja::Value(add_generation_prompt);
  jinja::EvalLimits limits{impl_->limits.max_steps, impl_->limits.max_output_bytes,
                           impl_->limits.max_call_depth};
  jinja::Evaluator ev(impl_->name, impl_->lexed.source, limits);
  jinja::PStr out = ev.render(impl_->body, std::move(globals));
  return RenderedPrompt{std::move(out.text), std::move(out.untrusted)};
}

}  // namespace autoglm
