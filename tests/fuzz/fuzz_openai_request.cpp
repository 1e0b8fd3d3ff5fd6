// Fuzz target: arbitrary bytes as an OpenAI request body, mapped as a chat completion (first
// byte even) or a completion (odd). Must never crash, hang or read out of bounds; ApiError is
// the expected outcome for bad input. A body the mapping accepts must satisfy the engine's
// own validation (so the server never passes the engine a value it rejects), and a chat body
// must render through a GLM-4 chat template with valid untrusted ranges.
// Thread ownership: the fuzzer's thread. Owner: the "openai" thread.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "runtime/sampling_params.h"
#include "server/openai/api_error.h"
#include "server/openai/request_mapping.h"
#include "tokenizer/chat_template.h"

namespace {

using autoglm::server::openai::ApiError;
using autoglm::server::openai::GenerationSettings;
using autoglm::server::openai::MappingLimits;

// The glm4-tiny fixture's template (tests/fixtures/models/glm4-tiny), tools section included.
constexpr std::string_view kGlmTemplate =
    "[gMASK]<sop>{%- if tools -%}<|system|>\n# tools\n{% for tool in tools %}{%- set function = "
    "tool.function if tool.get(\"function\") else tool %}\n\n## {{ function.name }}\n\n{{ function "
    "| tojson(indent=4, ensure_ascii=False) }}\n{%- endfor %}{%- endif -%}{%- for msg in messages "
    "%}{%- if msg.role == 'system' %}<|system|>\n{{ msg.content }}{%- endif %}{%- endfor %}{%- for "
    "message in messages if message.role != 'system' %}{%- set role = message['role'] %}{%- set "
    "content = message['content'] %}{%- if role == 'user' %}<|user|>\n{{ content }}{%- elif role "
    "== 'assistant' %}<|assistant|>\n{{ content }}{%- elif role == 'observation' "
    "%}<|observation|>\n{{ content }}{%- endif %}{%- endfor %}{% if add_generation_prompt "
    "%}<|assistant|>{% endif %}";

void check_settings(const GenerationSettings& s, const MappingLimits& limits) {
  if (s.n < 1 || s.n > limits.max_n) __builtin_trap();
  if (s.max_tokens && *s.max_tokens < 1) __builtin_trap();
  if (s.stop.stop_strings.size() > static_cast<size_t>(limits.max_stop)) __builtin_trap();
  autoglm::StopParams stop = s.stop;
  stop.max_tokens = s.max_tokens.value_or(1);
  // Throws (and so aborts the fuzzer) if the mapping let through what the engine refuses.
  autoglm::validate(s.sampling, limits.vocab_size);
  autoglm::validate(stop, limits.vocab_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const autoglm::ChatTemplate kTemplate = [] {
    autoglm::TemplateLimits limits;
    limits.max_steps = 20000;
    limits.max_output_bytes = 256 * 1024;
    return autoglm::ChatTemplate::compile(std::string(kGlmTemplate), "glm4-tiny", limits);
  }();
  MappingLimits limits;
  limits.vocab_size = 1024;
  limits.max_prompt_bytes = 32 * 1024;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] % 2 == 0) {
      const auto r = autoglm::server::openai::parse_chat_completion_request(body, limits);
      check_settings(r.settings, limits);
      if (!r.messages.is_array() || r.messages.empty()) __builtin_trap();
      try {
        const autoglm::RenderedPrompt out =
            kTemplate.render(r.messages, r.tools, r.add_generation_prompt, r.template_kwargs);
        for (const autoglm::ByteRange& range : out.untrusted) {
          if (range.begin >= range.end || range.end > out.text.size()) __builtin_trap();
        }
      } catch (const autoglm::Error&) {
        // The template may refuse a conversation (limits, raise_exception): a 400 upstream.
      }
    } else {
      const auto r = autoglm::server::openai::parse_completion_request(body, limits);
      check_settings(r.settings, limits);
      if (r.prompts.empty()) __builtin_trap();
      for (const auto& p : r.prompts) {
        if (p.is_token_ids ? p.token_ids.empty() : p.text.empty()) __builtin_trap();
        for (const int32_t id : p.token_ids) {
          if (id < 0 || id >= limits.vocab_size) __builtin_trap();
        }
      }
    }
  } catch (const ApiError& e) {
    if (e.status() != 400 && e.status() != 413) __builtin_trap();
  }
  return 0;
}
