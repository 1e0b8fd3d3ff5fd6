// Who is calling: the identity an authenticated request carries from the auth layer to the
// handlers (model allow-lists, quotas, audit user_id, cache/prefix tenant). Plain data.
// Thread ownership: immutable once built; shared (shared_ptr<const Principal>) across threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace autoglm::security {

// admin: everything, including the admin routes; user: inference on its allowed models;
// metrics: /metrics only.
enum class Role { kAdmin, kUser, kMetrics };

std::string_view role_name(Role role);  // "admin", "user", "metrics"

enum class CredentialKind { kAnonymous, kApiKey, kJwt };

struct Principal {
  std::string id;  // API key id or JWT subject: the audit log's user_id
  CredentialKind kind = CredentialKind::kAnonymous;
  Role role = Role::kUser;
  std::vector<std::string> allowed_models;  // empty: every served model
  std::vector<std::string> scopes;          // from the key file or the JWT's scope claim
  std::string tenant;                       // isolates prefix/response caches; defaults to id
  // Quotas from the key file (or the JWT defaults); 0: the server-wide default applies.
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;

  bool may_use_model(std::string_view model) const {
    if (allowed_models.empty()) return true;
    for (const auto& allowed : allowed_models) {
      if (allowed == model || allowed == "*") return true;
    }
    return false;
  }
};

}  // namespace autoglm::security
