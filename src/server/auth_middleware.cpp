// See auth_middleware.h. Thread ownership: I/O threads (authenticate), any thread (setters).
#include "server/auth_middleware.h"

#include <chrono>
#include <string_view>

#include "security/auth_jwt_principal.h"
#include "server/auth_policy.h"
#include "server/error_response.h"
#include "server/json_log.h"

namespace autoglm::server {
namespace {

constexpr size_t kMaxCredentialBytes = 8192;

// The token of `Authorization: Bearer <token>` (scheme case-insensitive); empty when absent
// or malformed.
std::string_view bearer_token(const HttpRequest& request) {
  std::optional<std::string_view> header = request.header("authorization");
  if (!header) return {};
  std::string_view value = *header;
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = value[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return {};
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.size() > kMaxCredentialBytes) return {};
  return value;
}

bool looks_like_jwt(std::string_view token) {
  size_t dots = 0;
  for (char c : token) dots += c == '.' ? 1 : 0;
  return dots == 2;
}

int64_t system_unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Authenticator::Authenticator(const ServerState& state, int64_t failures_per_minute,
                             UnixClock unix_clock,
                             security::AuthFailureLimiter::Clock limiter_clock)
    : state_(state),
      unix_clock_(unix_clock ? std::move(unix_clock) : UnixClock(system_unix_now)),
      failures_(failures_per_minute, std::move(limiter_clock)) {}

void Authenticator::set_api_keys(std::shared_ptr<const security::ApiKeyStore> keys) {
  std::lock_guard lock(snapshot_mutex_);
  keys_ = std::move(keys);
}

void Authenticator::set_jwt_verifier(std::shared_ptr<const security::JwtVerifier> verifier) {
  std::lock_guard lock(snapshot_mutex_);
  jwt_ = std::move(verifier);
}

void Authenticator::audit(const HttpRequest& request, std::string action, std::string user_id,
                          int status, std::string detail) const {
  security::AuditSink* sink = state_.audit_sink();
  if (sink == nullptr) return;
  security::AuditEvent event;
  event.action = std::move(action);
  event.user_id = std::move(user_id);
  event.resource = request.path;
  event.client_ip = request.client_ip;
  event.status = "denied";
  event.http_status = status;
  event.trace_id = request.trace_id;
  event.detail = std::move(detail);
  sink->record(event);
}

std::optional<HttpResponse> Authenticator::reject(const HttpRequest& request,
                                                  const std::string& reason) {
  failures_.record_failure(request.client_ip);
  audit(request, "auth_failure", "anonymous", 401, reason);
  log_json(LogLevel::kWarn, "authentication failed",
           {{"client_ip", request.client_ip},
            {"path", request.path},
            {"reason", reason},
            {"request_id", request.request_id}});
  HttpResponse response =
      error_response(401, "authentication failed: " + reason, "", "invalid_api_key");
  response.headers.emplace_back("WWW-Authenticate", "Bearer");
  return response;
}

std::optional<HttpResponse> Authenticator::forbid(const HttpRequest& request,
                                                  const std::string& user_id,
                                                  const std::string& reason) {
  audit(request, "forbidden", user_id, 403, reason);
  return error_response(403, "forbidden: " + reason, "", "forbidden");
}

std::optional<HttpResponse> Authenticator::authenticate(HttpRequest& request) {
  const RouteAccess access = route_access(request.path);
  if (access == RouteAccess::kPublic) return std::nullopt;
  if (std::optional<std::chrono::seconds> wait = failures_.blocked(request.client_ip)) {
    audit(request, "rate_limited", "anonymous", 429, "too many authentication failures");
    HttpResponse response = error_response(
        429, "too many failed authentication attempts from this address; retry later", "",
        "auth_rate_limited");
    response.headers.emplace_back("Retry-After", std::to_string(wait->count()));
    return response;
  }
  const std::string_view token = bearer_token(request);
  if (token.empty()) return reject(request, "missing bearer credential");

  std::shared_ptr<const security::ApiKeyStore> keys;
  std::shared_ptr<const security::JwtVerifier> jwt;
  {
    std::lock_guard lock(snapshot_mutex_);
    keys = keys_;
    jwt = jwt_;
  }
  std::shared_ptr<security::Principal> principal;
  if (looks_like_jwt(token)) {
    if (jwt == nullptr) return reject(request, "JWT bearer tokens are not configured");
    security::JwtVerification verified = jwt->verify(token, unix_clock_());
    if (!verified.ok) return reject(request, "invalid token: " + verified.error);
    security::JwtPrincipalResult mapped = security::principal_from_jwt_claims(verified.claims);
    if (auto* why = std::get_if<std::string>(&mapped)) {
      return forbid(request,
                    verified.claims.subject.empty() ? "anonymous" : verified.claims.subject, *why);
    }
    principal = std::make_shared<security::Principal>(std::get<security::Principal>(mapped));
  } else {
    const security::ApiKeyRecord* record = keys ? keys->find(token) : nullptr;
    if (record == nullptr) return reject(request, "invalid API key");
    principal = std::make_shared<security::Principal>(security::principal_from_key(*record));
  }
  if (!role_may_access(principal->role, access)) {
    return forbid(request, principal->id,
                  "role '" + std::string(security::role_name(principal->role)) + "' may not call " +
                      std::string(route_access_name(access)) + " routes");
  }
  request.principal = std::move(principal);
  return std::nullopt;
}

}  // namespace autoglm::server
