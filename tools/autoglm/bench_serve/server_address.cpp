// See server_address.h.
#include "server_address.h"

#include "core/error.h"

namespace autoglm::bench {

ServerAddress parse_base_url(std::string_view url) {
  ServerAddress a;
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
    a.tls = true;
  } else {
    fail(ErrorCode::kInvalidArgument,
         "--base-url must start with http:// or https://: " + std::string(url));
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) a.base_path = rest.substr(slash);
  while (!a.base_path.empty() && a.base_path.back() == '/') a.base_path.pop_back();
  size_t colon = authority.rfind(':');
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      fail(ErrorCode::kInvalidArgument, "--base-url: unclosed '[' in " + std::string(url));
    }
    a.host = authority.substr(1, close - 1);
    colon = authority.size() > close + 1 && authority[close + 1] == ':' ? close + 1
                                                                        : std::string_view::npos;
  } else {
    a.host = authority.substr(0, colon);
  }
  a.port = colon == std::string_view::npos ? (a.tls ? "443" : "80")
                                           : std::string(authority.substr(colon + 1));
  if (a.host.empty() || a.port.empty() ||
      a.port.find_first_not_of("0123456789") != std::string::npos) {
    fail(ErrorCode::kInvalidArgument, "--base-url has no valid host and port: " + std::string(url));
  }
  return a;
}

}  // namespace autoglm::bench
