// Auth settings (auth_settings.h) and the start-up wiring of the authenticator: loading the
// keys file and the JWT config, and registering their hot reloaders.
// Thread ownership: main thread at start-up; the reloaders run on whichever thread calls
// ReloadRegistry::reload_all (signal thread or an I/O thread).
#include <string_view>

#include "core/error.h"
#include "server/auth_middleware.h"
#include "server/auth_settings.h"
#include "server/json_log.h"

namespace autoglm::server {

bool is_loopback_host(std::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  // 127.0.0.0/8 in dotted-quad form: "127." then three more numeric parts.
  if (host.substr(0, 4) != "127.") return false;
  int parts = 2;  // "127" and the one being read
  int digits = 0;
  for (char c : host.substr(4)) {
    if (c == '.') {
      if (digits == 0) return false;
      ++parts;
      digits = 0;
    } else if (c >= '0' && c <= '9' && digits < 3) {
      ++digits;
    } else {
      return false;
    }
  }
  return parts == 4 && digits > 0;
}

bool auth_required(const AuthSettings& settings, std::string_view host) {
  bool required = false;
  if (settings.mode == "on") {
    required = true;
  } else if (settings.mode == "auto") {
    required = !is_loopback_host(host);
  } else if (settings.mode != "off") {
    fail(ErrorCode::kInvalidArgument, "auth must be auto, on or off, not '" + settings.mode + "'");
  }
  if (required && settings.api_keys_file.empty() && settings.jwt_config_file.empty()) {
    fail(ErrorCode::kInvalidArgument,
         std::string("auth is on (") +
             (settings.mode == "on" ? "auth=on" : "auth=auto on a non-loopback host") +
             ") but neither api_keys_file nor jwt_config_file is set: every request would be "
             "refused. Set one, or auth=off to serve without authentication");
  }
  return required;
}

namespace {

std::shared_ptr<const security::JwtVerifier> load_jwt_verifier(const std::string& path) {
  security::JwtConfig config = security::load_jwt_config(path);
  return std::make_shared<const security::JwtVerifier>(std::move(config.keys),
                                                       std::move(config.policy));
}

}  // namespace

std::shared_ptr<Authenticator> setup_authentication(const AuthSettings& settings,
                                                    std::string_view host, ServerState& state) {
  if (!auth_required(settings, host)) {
    log_json(LogLevel::kInfo, "authentication off",
             {{"mode", settings.mode}, {"host", std::string(host)}});
    return nullptr;
  }
  auto authenticator = std::make_shared<Authenticator>(state, settings.failures_per_minute);
  std::weak_ptr<Authenticator> weak = authenticator;
  if (!settings.api_keys_file.empty()) {
    const std::string path = settings.api_keys_file;
    auto keys = std::make_shared<const security::ApiKeyStore>(security::ApiKeyStore::load(path));
    log_json(LogLevel::kInfo, "API keys loaded", {{"keys", static_cast<int64_t>(keys->size())}});
    authenticator->set_api_keys(std::move(keys));
    state.reload_registry().add("api_keys", [weak, path] {
      auto reloaded =
          std::make_shared<const security::ApiKeyStore>(security::ApiKeyStore::load(path));
      const auto count = static_cast<int64_t>(reloaded->size());
      if (auto target = weak.lock()) target->set_api_keys(std::move(reloaded));
      log_json(LogLevel::kInfo, "API keys reloaded", {{"keys", count}});
    });
  }
  if (!settings.jwt_config_file.empty()) {
    const std::string path = settings.jwt_config_file;
    authenticator->set_jwt_verifier(load_jwt_verifier(path));
    state.reload_registry().add("jwt", [weak, path] {
      auto reloaded = load_jwt_verifier(path);
      if (auto target = weak.lock()) target->set_jwt_verifier(std::move(reloaded));
      log_json(LogLevel::kInfo, "JWT configuration reloaded", {});
    });
  }
  log_json(
      LogLevel::kInfo, "authentication on",
      {{"api_keys", !settings.api_keys_file.empty()}, {"jwt", !settings.jwt_config_file.empty()}});
  return authenticator;
}

}  // namespace autoglm::server
