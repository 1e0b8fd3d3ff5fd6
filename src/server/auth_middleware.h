// The authentication layer in front of the router: reads `Authorization: Bearer <x>`, verifies
// it as a JWT (three dot-separated segments) or looks it up as an API key, applies the route
// policy (auth_policy.h) and sets HttpRequest::principal; otherwise it answers 401 (with
// WWW-Authenticate: Bearer), 403 or, for a client IP with too many recent failures, 429 with
// Retry-After before the credential is even looked at. Failures, refusals and blocks are
// audited without the credential. Keys and JWT verifier are immutable snapshots swapped by
// hot reload: a request uses the snapshot it started with, the next one sees the new set.
// Thread ownership: authenticate() runs on I/O threads, concurrently; the setters (reload)
// run on any thread. Snapshots are shared_ptrs guarded by a mutex held only to copy them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "security/api_keys.h"
#include "security/auth_failure_limiter.h"
#include "security/jwt_verifier.h"
#include "server/auth_settings.h"
#include "server/http_types.h"
#include "server/server_state.h"

namespace autoglm::server {

class Authenticator {
 public:
  using UnixClock = std::function<int64_t()>;  // seconds since the epoch, for exp/nbf

  // `state` (for its audit sink) must outlive the authenticator; the clocks are injectable for
  // tests (defaults: system and steady clocks).
  Authenticator(const ServerState& state, int64_t failures_per_minute, UnixClock unix_clock = {},
                security::AuthFailureLimiter::Clock limiter_clock = {});

  void set_api_keys(std::shared_ptr<const security::ApiKeyStore> keys);
  void set_jwt_verifier(std::shared_ptr<const security::JwtVerifier> verifier);

  // nullopt: let the request through (request.principal is set unless the route is public);
  // otherwise the refusal to send.
  std::optional<HttpResponse> authenticate(HttpRequest& request);

 private:
  struct Credential;
  std::optional<HttpResponse> reject(const HttpRequest& request, const std::string& reason);
  std::optional<HttpResponse> forbid(const HttpRequest& request, const std::string& user_id,
                                     const std::string& reason);
  void audit(const HttpRequest& request, std::string action, std::string user_id, int status,
             std::string detail) const;

  const ServerState& state_;
  UnixClock unix_clock_;
  security::AuthFailureLimiter failures_;
  mutable std::mutex snapshot_mutex_;
  std::shared_ptr<const security::ApiKeyStore> keys_;
  std::shared_ptr<const security::JwtVerifier> jwt_;
};

// For run_server: when auth is required for `host`, loads the keys file and the JWT config
// (throwing a start-up error that names the file), registers their reloaders ("api_keys",
// "jwt") in state.reload_registry(), and returns the authenticator; null when auth is off.
std::shared_ptr<Authenticator> setup_authentication(const AuthSettings& settings,
                                                    std::string_view host, ServerState& state);

}  // namespace autoglm::server
