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

std::vector<int32_t> encode_chat_request(const ModelChatTemplate& chat_template,
                                         const Tokenizer& tokenizer, const Json& messages,
                                         const Json& tools, bool add_generation_prompt,
                                         const Json& template_kwargs) {
  try {
    return encode_chat_prompt(chat_template, tokenizer, messages, tools, add_generation_prompt,
                              template_kwargs);
  } catch (const Error& e) {
    const std::string& name = chat_template.tmpl.name();
    const std::string message = e.what();
    if (!name.empty() && message.rfind(name, 0) == 0) {
      throw ApiError::invalid("messages", without_source_name(message, name));
    }
    throw ApiError::invalid("messages", "the prompt cannot be encoded: " + message);
  }
}

}  // namespace autoglm::server::openai
