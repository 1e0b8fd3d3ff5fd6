// The chat-specific request fields: `messages` (content as a string, null for an assistant
// turn with tool calls, or a list of text parts joined with "\n"; image/audio/file parts are
// refused because the served models are text only), `tools` and `chat_template_kwargs`, all
// checked for type and size before they reach the chat template.
// Thread ownership: none (pure functions). Owner: the "openai" thread.
#pragma once

#include "core/json_util.h"
#include "server/openai/json_fields.h"
#include "server/openai/request_mapping.h"

namespace autoglm::server::openai {

struct ParsedMessages {
  Json messages;  // array of message objects, content always a string (or null)
  size_t content_bytes = 0;
};

ParsedMessages parse_chat_messages(const FieldReader& body, const MappingLimits& limits);
Json parse_chat_tools(const FieldReader& body);       // array or null
Json parse_template_kwargs(const FieldReader& body);  // object (empty when absent)

}  // namespace autoglm::server::openai
