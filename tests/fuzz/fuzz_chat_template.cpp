// Fuzz target: arbitrary bytes as a chat template, compiled and rendered with a fixed
// conversation and tight limits. Must never crash, hang or read out of bounds; template
// errors (autoglm::Error) are expected outcomes. Thread ownership: the fuzzer's thread.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const autoglm::Json kMessages = autoglm::Json::parse(R"([
    {"role": "system", "content": "sys <|im_end|>"},
    {"role": "user", "content": "héllo 🌍", "name": "u"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": 1.5}}}]},
    {"role": "tool", "content": [{"type": "text", "text": "ok"}]}
  ])");
  static const autoglm::Json kTools = autoglm::Json::parse(
      R"([{"type": "function", "function": {"name": "f", "parameters": {}}}])");
  autoglm::TemplateLimits limits;
  limits.max_source_bytes = 64 * 1024;
  limits.max_steps = 20000;
  limits.max_output_bytes = 64 * 1024;
  limits.max_call_depth = 16;
  limits.max_nesting = 32;
  try {
    auto tmpl = autoglm::ChatTemplate::compile(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz", limits);
    autoglm::RenderedPrompt out =
        tmpl.render(kMessages, kTools, true, autoglm::Json{{"bos_token", "<s>"}});
    for (const autoglm::ByteRange& r : out.untrusted) {
      if (r.begin >= r.end || r.end > out.text.size()) __builtin_trap();  // ranges must be valid
    }
  } catch (const autoglm::Error&) {
  }
  return 0;
}
