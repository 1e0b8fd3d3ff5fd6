// ChatTemplate: compiles a model's Jinja `chat_template` (tokenizer_config.json) and renders
// conversations exactly as transformers does (trim_blocks, lstrip_blocks, loopcontrols,
// immutable sandbox, raise_exception/strftime_now, Python-style tojson), inside a sandbox with
// step, output, nesting and source-size limits. The rendered prompt carries the byte ranges
// that came from untrusted input, so special-token text typed by a user stays plain text.
// Thread ownership: a compiled ChatTemplate is immutable; render() may be called from any
// thread concurrently (each call has its own evaluator).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "tokenizer/byte_range.h"

namespace autoglm {

struct TemplateLimits {
  size_t max_source_bytes = 1u << 20;
  size_t max_nesting = 64;         // nested blocks/expressions when parsing
  uint64_t max_steps = 2'000'000;  // evaluated nodes + loop iterations per render
  size_t max_output_bytes = 8u << 20;
  size_t max_call_depth = 64;  // nested macro calls
};

struct RenderedPrompt {
  std::string text;
  std::vector<ByteRange> untrusted;  // sorted, disjoint
};

class ChatTemplate {
 public:
  // Throws Error(kTemplate, "<name>:<line>:<col>: ...") on syntax errors or limits.
  static ChatTemplate compile(std::string source, std::string name, TemplateLimits limits = {});

  // messages: array of {role, content, ...}; tools: array or null; extra_context: object with
  // bos_token, eos_token, enable_thinking, ... (all treated as untrusted data).
  // model_context: values the model itself supplies (bos_token, eos_token from its
  // tokenizer_config.json); trusted, so the control tokens they spell stay special.
  RenderedPrompt render(const Json& messages, const Json& tools, bool add_generation_prompt,
                        const Json& extra_context = Json::object(),
                        const Json& model_context = Json::object()) const;

  const std::string& name() const;
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

 private:
  struct Impl;
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace autoglm
