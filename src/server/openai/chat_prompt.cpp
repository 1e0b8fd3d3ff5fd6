// See chat_prompt.h. Owner: the "openai" thread.
#include "server/openai/chat_prompt.h"

#include <string>

#include "core/error.h"
#include "server/openai/api_error.h"

namespace autoglm::server::openai {
namespace {

// Template errors start with the template's name, which is the file it came from; clients
// must not see server paths.
std::string without_source_name(std::string message, const std::string& name) {
  if (!name.empty() && message.rfind(name, 0) == 0) {
    message.replace(0, name.size(), "chat template");
  }
  return message;
}

}  // namespace

std::vector<int32_t> encode_chat_prompt(const ModelChatTemplate& chat_template,
                                        const Tokenizer& tokenizer, const Json& messages,
                                        const Json& tools, bool add_generation_prompt,
                                        const Json& template_kwargs) {
  RenderedPrompt rendered;
  try {
    rendered = chat_template.tmpl.render(messages, tools, add_generation_prompt, template_kwargs,
                                         chat_template.model_context);
  } catch (const Error& e) {
    throw ApiError::invalid("messages", without_source_name(e.what(), chat_template.tmpl.name()));
  }
  EncodeOptions options;
  options.special = SpecialTokenPolicy::kExceptUntrusted;
  options.untrusted = rendered.untrusted;
  std::vector<uint32_t> ids;
  try {
    ids = tokenizer.encode(rendered.text, options);
  } catch (const Error& e) {
    throw ApiError::invalid("messages", std::string("the prompt cannot be encoded: ") + e.what());
  }
  return {ids.begin(), ids.end()};
}

}  // namespace autoglm::server::openai
