// The serve settings of authentication (auth, api_keys_file, jwt_config_file,
// auth_failures_per_minute) and the rule that decides whether auth is on.
// Thread ownership: plain data and pure functions, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace autoglm::server {

struct AuthSettings {
  std::string mode = "auto";         // auto: off on a loopback host, on otherwise; on; off
  std::string api_keys_file;         // YAML keys file (security/api_keys.h); empty: no API keys
  std::string jwt_config_file;       // YAML JWT config (security/jwt_verifier.h); empty: no JWTs
  int64_t failures_per_minute = 10;  // per client IP, before 429
};

// 127.0.0.0/8, ::1 (also bracketed) and "localhost".
bool is_loopback_host(std::string_view host);

// Whether requests must authenticate when listening on `host`. Throws Error(kInvalidArgument)
// for an unknown mode, or when auth is on but neither a keys file nor a JWT config is set
// (a server that would refuse everyone must not start).
bool auth_required(const AuthSettings& settings, std::string_view host);

}  // namespace autoglm::server
