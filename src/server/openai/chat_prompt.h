// Turns a parsed chat request into prompt token ids: renders the model's chat template and
// encodes it so that only the template's own text can form control tokens. Everything that
// came from the request (message text, tools, chat_template_kwargs) is an untrusted range, and
// EncodeOptions{kExceptUntrusted} keeps special-token spellings inside them as plain text:
// the same rendering tools/autoglm (ModelSession::encode_chat) uses for the CLI chat.
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
std::vector<int32_t> encode_chat_prompt(const ModelChatTemplate& chat_template,
                                        const Tokenizer& tokenizer, const Json& messages,
                                        const Json& tools, bool add_generation_prompt,
                                        const Json& template_kwargs);

}  // namespace autoglm::server::openai
