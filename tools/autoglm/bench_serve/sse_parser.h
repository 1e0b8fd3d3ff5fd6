// Incremental parser for a text/event-stream body (the WHATWG Server-Sent Events format), fed
// with whatever byte ranges the socket returns: an event, a line or a CRLF pair may be split
// at any byte. Used by `autoglm bench serve` to read OpenAI streaming responses.
// Thread ownership: one parser per response, used by the thread that reads the response.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace autoglm::bench {

struct SseEvent {
  std::string type;  // the `event:` field; empty means the default "message"
  std::string data;  // the `data:` lines joined with '\n'
};

class SseParser {
 public:
  using EventHandler = std::function<void(SseEvent&&)>;

  // An event (or a single line) larger than `max_event_bytes` is a protocol error: the
  // benchmark must not grow without bound on a misbehaving server.
  explicit SseParser(size_t max_event_bytes = 16u << 20) : max_event_bytes_(max_event_bytes) {}

  // Consumes `bytes`, calling `on_event` for every event completed by a blank line.
  // Throws autoglm::Error(kResourceExhausted) when a line or event exceeds the limit.
  void feed(std::string_view bytes, const EventHandler& on_event);

  // Bytes of an unfinished line or event are held; at the end of the stream they are
  // discarded, as the SSE specification says. True when nothing is pending.
  bool idle() const { return line_.empty() && data_.empty() && !has_data_; }

 private:
  void process_line(const EventHandler& on_event);

  size_t max_event_bytes_;
  std::string line_;           // the current line, without its terminator
  bool skip_next_lf_ = false;  // the previous byte was CR: an LF right after it is the same EOL
  std::string type_;
  std::string data_;
  bool has_data_ = false;
};

}  // namespace autoglm::bench
