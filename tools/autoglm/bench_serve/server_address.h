// The --base-url of `autoglm bench serve`, parsed: scheme, host, port and path prefix. Plain
// data and parsing only (no Boost), so the benchmark's unit tests need not build the client.
// Thread ownership: pure functions, any thread.
#pragma once

#include <string>
#include <string_view>

namespace autoglm::bench {

// http[s]://host[:port][/path]; the path is prefixed to every request target.
struct ServerAddress {
  bool tls = false;
  std::string host;
  std::string port;
  std::string base_path;  // without a trailing '/'
};
// Throws autoglm::Error(kInvalidArgument) on anything else.
ServerAddress parse_base_url(std::string_view url);

}  // namespace autoglm::bench
