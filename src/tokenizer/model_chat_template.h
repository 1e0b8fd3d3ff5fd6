// Finds and compiles a model directory's chat template the way transformers does: a
// `chat_template.jinja` file if present, else tokenizer_config.json's `chat_template` (a string,
// or a list of {name, template} from which "default" is taken). Also collects the special-token
// strings the template may print (bos_token, eos_token, ...), which are model data and so
// trusted. Thread ownership: none (returns immutable values).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace autoglm {

struct ModelChatTemplate {
  ChatTemplate tmpl;
  Json model_context;  // {"bos_token": "...", "eos_token": "...", ...}: pass to render()
};

// nullopt when the directory has no chat template; throws autoglm::Error for a malformed one.
std::optional<ModelChatTemplate> find_model_chat_template(const std::string& model_dir);

// As find_model_chat_template, but a missing template is Error(kNotFound) naming the files.
ModelChatTemplate load_model_chat_template(const std::string& model_dir);

// Renders a conversation with the model's template and encodes it so that only the text the
// template itself wrote may form control tokens: the messages' text is encoded as plain text
// (the renderer's untrusted ranges). Throws autoglm::Error from rendering or encoding.
std::vector<int32_t> encode_chat_prompt(const ModelChatTemplate& chat_template,
                                        const Tokenizer& tokenizer, const Json& messages,
                                        const Json& tools, bool add_generation_prompt,
                                        const Json& template_kwargs);

}  // namespace autoglm
