// Interpretation of OpenAI streaming chunks into per-request measurements; the conventions
// are documented in request_record.h. Thread ownership: see request_record.h.
#include "request_record.h"

#include <nlohmann/json.hpp>

namespace autoglm::bench {
namespace {

// The generated text of choices[0] in a completions or chat-completions chunk, or "".
std::string_view chunk_text(const nlohmann::json& chunk) {
  auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array() || choices->empty()) return {};
  const nlohmann::json& choice = (*choices)[0];
  if (!choice.is_object()) return {};
  auto text_of = [](const nlohmann::json& object, const char* key) -> std::string_view {
    auto it = object.find(key);
    if (it == object.end() || !it->is_string()) return {};
    return it->get_ref<const std::string&>();
  };
  if (auto text = text_of(choice, "text"); !text.empty()) return text;
  auto delta = choice.find("delta");
  if (delta == choice.end() || !delta->is_object()) return {};
  if (auto content = text_of(*delta, "content"); !content.empty()) return content;
  return text_of(*delta, "reasoning_content");
}

std::optional<int32_t> usage_count(const nlohmann::json& usage, const char* key) {
  auto it = usage.find(key);
  if (it == usage.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int32_t>();
}

std::string error_message(const nlohmann::json& error) {
  if (error.is_object()) {
    auto message = error.find("message");
    if (message != error.end() && message->is_string()) return message->get<std::string>();
  }
  return error.dump();
}

}  // namespace

std::optional<double> RequestRecord::tpot_s() const {
  const int32_t tokens = output_tokens();
  if (!success || tokens < 2) return std::nullopt;
  return (e2e_s - ttft_s) / (tokens - 1);
}

bool StreamRecorder::on_data(std::string_view data, double elapsed_s) {
  if (data == "[DONE]") {
    record_.done_seen = true;
    return false;
  }
  const nlohmann::json chunk = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!chunk.is_object()) {
    fail("the stream sent an event that is not a JSON object: " + std::string(data.substr(0, 200)),
         elapsed_s);
    return false;
  }
  if (auto error = chunk.find("error"); error != chunk.end() && !error->is_null()) {
    fail("error event: " + error_message(*error), elapsed_s);
    return false;
  }
  if (!chunk_text(chunk).empty()) {
    if (record_.content_chunks == 0) {
      record_.ttft_s = elapsed_s;
    } else {
      record_.itl_s.push_back(elapsed_s - last_content_s_);
    }
    last_content_s_ = elapsed_s;
    ++record_.content_chunks;
  }
  if (auto usage = chunk.find("usage"); usage != chunk.end() && usage->is_object()) {
    record_.usage_prompt_tokens = usage_count(*usage, "prompt_tokens");
    record_.usage_completion_tokens = usage_count(*usage, "completion_tokens");
  }
  return true;
}

void StreamRecorder::finish(double elapsed_s) {
  if (failed_) return;
  record_.e2e_s = elapsed_s;
  if (!record_.done_seen) {
    fail("the stream ended without data: [DONE]", elapsed_s);
  } else if (record_.content_chunks == 0) {
    fail("the stream carried no generated text (TTFT is undefined)", elapsed_s);
  } else {
    record_.success = true;
  }
}

void StreamRecorder::fail(std::string message, double elapsed_s) {
  if (failed_) return;
  failed_ = true;
  record_.success = false;
  record_.error = std::move(message);
  record_.e2e_s = elapsed_s;
}

}  // namespace autoglm::bench
