// See chat_messages.h. Owner: the "openai" thread.
#include "server/openai/chat_messages.h"

#include <string>
#include <string_view>

#include "server/openai/api_error.h"

namespace autoglm::server::openai {
namespace {

constexpr size_t kMaxRoleBytes = 64;
constexpr size_t kMaxTools = 128;

bool is_media_part(std::string_view type) {
  return type == "image_url" || type == "input_image" || type == "image" || type == "input_audio" ||
         type == "audio_url" || type == "video_url" || type == "file" || type == "input_file";
}

// A list of {type:"text", text} parts, joined with "\n" (as vLLM does).
std::string join_text_parts(const Json& parts, const std::string& param) {
  std::string joined;
  for (size_t j = 0; j < parts.size(); ++j) {
    const Json& part = parts[j];
    const std::string part_param = param + "[" + std::to_string(j) + "]";
    if (!part.is_object()) wrong_type(part_param, "an object", part);
    const FieldReader reader(part, part_param + ".");
    const std::optional<std::string> type = reader.string("type", kMaxRoleBytes);
    if (!type)
      throw ApiError::invalid(part_param + ".type", "'" + part_param + ".type' is required");
    if (is_media_part(*type)) {
      throw ApiError::invalid(part_param, "this model accepts text only: '" + part_param +
                                              "' is an '" + *type + "' part");
    }
    if (*type != "text") {
      throw ApiError::invalid(part_param + ".type",
                              "unknown content part type '" + *type + "'; expected 'text'");
    }
    const Json* text = reader.get("text");
    if (text == nullptr) {
      throw ApiError::invalid(part_param + ".text", "'" + part_param + ".text' is required");
    }
    if (!text->is_string()) wrong_type(part_param + ".text", "a string", *text);
    if (j > 0) joined += '\n';
    joined += text->get_ref<const std::string&>();
  }
  return joined;
}

Json parse_message(const Json& message, const std::string& param, size_t& content_bytes) {
  if (!message.is_object()) wrong_type(param, "an object", message);
  const FieldReader reader(message, param + ".");
  const std::optional<std::string> role = reader.string("role", kMaxRoleBytes);
  if (!role || role->empty()) {
    throw ApiError::invalid(param + ".role", "'" + param + ".role' is required");
  }
  Json out = message;  // name, tool_calls, tool_call_id... reach the template as sent
  const Json* content = reader.get("content");
  const std::string content_param = param + ".content";
  if (content == nullptr) {
    // An assistant turn that only calls tools has no content.
    if (*role != "assistant") {
      throw ApiError::invalid(content_param, "'" + content_param + "' is required");
    }
    out["content"] = nullptr;
    return out;
  }
  if (content->is_string()) {
    content_bytes += content->get_ref<const std::string&>().size();
    return out;
  }
  if (!content->is_array()) {
    wrong_type(content_param, "a string or an array of content parts", *content);
  }
  std::string joined = join_text_parts(*content, content_param);
  content_bytes += joined.size();
  out["content"] = std::move(joined);
  return out;
}

}  // namespace

ParsedMessages parse_chat_messages(const FieldReader& body, const MappingLimits& limits) {
  const Json* messages = body.get("messages");
  if (messages == nullptr) throw ApiError::invalid("messages", "'messages' is required");
  if (!messages->is_array()) wrong_type("messages", "an array", *messages);
  if (messages->empty()) throw ApiError::invalid("messages", "'messages' must not be empty");
  if (messages->size() > static_cast<size_t>(limits.max_messages)) {
    throw ApiError::invalid("messages", "'messages' may hold at most " +
                                            std::to_string(limits.max_messages) + " messages");
  }
  ParsedMessages out;
  out.messages = Json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    out.messages.push_back(
        parse_message((*messages)[i], "messages[" + std::to_string(i) + "]", out.content_bytes));
  }
  if (out.content_bytes > limits.max_prompt_bytes) {
    throw_prompt_too_large("messages", out.content_bytes, limits);
  }
  return out;
}

Json parse_chat_tools(const FieldReader& body) {
  const Json* tools = body.get("tools");
  if (tools == nullptr) return Json(nullptr);
  if (!tools->is_array()) wrong_type("tools", "an array", *tools);
  if (tools->size() > kMaxTools) {
    throw ApiError::invalid("tools",
                            "'tools' may hold at most " + std::to_string(kMaxTools) + " tools");
  }
  for (size_t i = 0; i < tools->size(); ++i) {
    if (!(*tools)[i].is_object()) {
      wrong_type("tools[" + std::to_string(i) + "]", "an object", (*tools)[i]);
    }
  }
  return tools->empty() ? Json(nullptr) : *tools;
}

Json parse_template_kwargs(const FieldReader& body) {
  const Json* kwargs = body.get("chat_template_kwargs");
  if (kwargs == nullptr) return Json::object();
  if (!kwargs->is_object()) wrong_type("chat_template_kwargs", "an object", *kwargs);
  // These are the template's own inputs; a client may not replace them through kwargs.
  for (const char* reserved : {"messages", "tools", "add_generation_prompt"}) {
    if (kwargs->contains(reserved)) {
      throw ApiError::invalid("chat_template_kwargs",
                              "'chat_template_kwargs' may not set '" + std::string(reserved) + "'");
    }
  }
  return *kwargs;
}

}  // namespace autoglm::server::openai
