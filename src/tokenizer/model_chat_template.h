// Finds and compiles a model directory's chat template the way transformers does: a
// `chat_template.jinja` file if present, else tokenizer_config.json's `chat_template` (a string,
// or a list of {name, template} from which "default" is taken). Also collects the special-token
// strings the template may print (bos_token, eos_token, ...), which are model data and so
// trusted. Thread ownership: none (returns immutable values).
#pragma once

#include <string>

#include "core/json_util.h"
#include "tokenizer/chat_template.h"

namespace autoglm {

struct ModelChatTemplate {
  ChatTemplate tmpl;
  Json model_context;  // {"bos_token": "...", "eos_token": "...", ...}: pass to render()
};

// Throws Error(kNotFound) when the directory has no chat template, naming the files looked at.
ModelChatTemplate load_model_chat_template(const std::string& model_dir);

}  // namespace autoglm
