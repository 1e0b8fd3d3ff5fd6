// W3C Trace Context (traceparent) parsing and the random ids the server hands out: a request
// id per request, and a trace id taken from a valid `traceparent` header or generated.
// Thread ownership: pure functions, any thread (randomness from OpenSSL's thread-safe RAND).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace autoglm::server {

struct TraceParent {
  std::string version;    // 2 lower-case hex digits, never "ff"
  std::string trace_id;   // 32 lower-case hex digits, not all zero
  std::string parent_id;  // 16 lower-case hex digits, not all zero
  std::string flags;      // 2 lower-case hex digits
};

// Parses a traceparent header value per the W3C spec (version 00 exactly 55 characters; a
// later version may append "-..." fields). nullopt for anything invalid.
std::optional<TraceParent> parse_traceparent(std::string_view header);

// `bytes` random bytes as lower-case hex (2 * bytes characters), never all zero.
std::string random_hex(size_t bytes);

// The traceparent the server answers with: the trace id, a fresh span id, and the caller's
// flags (or "01" when the trace was started here).
std::string make_traceparent(std::string_view trace_id, std::string_view flags = "01");

}  // namespace autoglm::server
