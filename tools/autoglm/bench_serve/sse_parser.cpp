// Incremental Server-Sent Events parser; see sse_parser.h. Follows the WHATWG "event stream
// interpretation": lines end in CRLF, LF or CR; a blank line dispatches the event; lines that
// start with ':' are comments; a single space after the field's colon is dropped.
// Thread ownership: see sse_parser.h.
#include "sse_parser.h"

#include "core/error.h"

namespace autoglm::bench {

void SseParser::feed(std::string_view bytes, const EventHandler& on_event) {
  for (char c : bytes) {
    if (skip_next_lf_) {
      skip_next_lf_ = false;
      if (c == '\n') continue;  // the second half of a CRLF split across reads
    }
    if (c == '\r' || c == '\n') {
      skip_next_lf_ = (c == '\r');
      process_line(on_event);
      line_.clear();
      continue;
    }
    if (line_.size() + data_.size() >= max_event_bytes_) {
      fail(ErrorCode::kResourceExhausted,
           "server-sent event larger than " + std::to_string(max_event_bytes_) + " bytes");
    }
    line_.push_back(c);
  }
}

void SseParser::process_line(const EventHandler& on_event) {
  if (line_.empty()) {  // blank line: dispatch
    if (has_data_) {
      SseEvent event{std::move(type_), std::move(data_)};
      on_event(std::move(event));
    }
    type_.clear();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line_.front() == ':') return;  // comment (keep-alive pings)
  const size_t colon = line_.find(':');
  std::string_view field(line_);
  std::string_view value;
  if (colon != std::string::npos) {
    field = std::string_view(line_).substr(0, colon);
    value = std::string_view(line_).substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    type_.assign(value);
  }
  // `id:` and `retry:` only matter to reconnecting browsers; anything else is ignored.
}

}  // namespace autoglm::bench
