// Turns a parsed chat request into prompt token ids with the tokenizer library's
// encode_chat_prompt (only the template's own text can form control tokens; message text,
// tools and chat_template_kwargs stay plain text), the same function the CLI chat uses, and
// maps its failures to the API's 400.
// Thread ownership: none (ModelChatTemplate and Tokenizer are immutable and shareable).
// Owner: the "openai" thread.
#pragma once

#include <cstdint>
#include <vector>

#include "core/json_util.h"
#include "tokenizer/model_chat_template.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::server::openai {

// Throws ApiError 400 when the template refuses the conversation (raise_exception, limits) or
// the text cannot be encoded; messages name the chat template, never its file path.
std::vector<int32_t> encode_chat_request(const ModelChatTemplate& chat_template,
                                         const Tokenizer& tokenizer, const Json& messages,
                                         const Json& tools, bool add_generation_prompt,
                                         const Json& template_kwargs);

}  // namespace autoglm::server::openai
