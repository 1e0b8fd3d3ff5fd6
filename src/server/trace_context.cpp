// traceparent parsing and id generation. Thread ownership: pure functions, any thread.
#include "server/trace_context.h"

#include <openssl/rand.h>

#include "core/error.h"

namespace autoglm::server {
namespace {

bool is_lower_hex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool all_zero(std::string_view text) {
  return text.find_first_not_of('0') == std::string::npos;
}

}  // namespace

std::optional<TraceParent> parse_traceparent(std::string_view header) {
  // version(2) '-' trace-id(32) '-' parent-id(16) '-' flags(2) = 55 characters.
  constexpr size_t kLength = 55;
  if (header.size() < kLength) return std::nullopt;
  if (header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  TraceParent parsed{std::string(header.substr(0, 2)), std::string(header.substr(3, 32)),
                     std::string(header.substr(36, 16)), std::string(header.substr(53, 2))};
  if (!is_lower_hex(parsed.version) || !is_lower_hex(parsed.trace_id) ||
      !is_lower_hex(parsed.parent_id) || !is_lower_hex(parsed.flags)) {
    return std::nullopt;
  }
  if (parsed.version == "ff") return std::nullopt;
  // Version 00 has exactly these fields; a later version may add more after a dash.
  if (parsed.version == "00" && header.size() != kLength) return std::nullopt;
  if (header.size() > kLength && header[kLength] != '-') return std::nullopt;
  if (all_zero(parsed.trace_id) || all_zero(parsed.parent_id)) return std::nullopt;
  return parsed;
}

std::string random_hex(size_t bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string raw(bytes, '\0');
  std::string hex;
  do {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
      fail(ErrorCode::kInternal, "OpenSSL RAND_bytes failed");
    }
    hex.clear();
    for (char byte : raw) {
      auto value = static_cast<unsigned char>(byte);
      hex.push_back(kDigits[value >> 4]);
      hex.push_back(kDigits[value & 0xF]);
    }
  } while (all_zero(hex));
  return hex;
}

std::string make_traceparent(std::string_view trace_id, std::string_view flags) {
  return "00-" + std::string(trace_id) + "-" + random_hex(8) + "-" + std::string(flags);
}

}  // namespace autoglm::server
