// API keys: the keys file (YAML) the operator writes, holding only SHA-256 hashes of
// high-entropy keys, each with an id, a role, the models it may use, quotas and a tenant; and
// the constant-time lookup of a presented key.
//   keys:
//     - {id: ops, hash: "sha256:<64 hex>", role: admin|user|metrics, models: [m1, m2],
//        rpm: 60, tpm: 100000, tenant: team-a, scopes: [..]}
// Thread ownership: an ApiKeyStore is immutable after construction and safe from any thread;
// a reload builds a new store and swaps a shared_ptr to it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "security/principal.h"

namespace autoglm::security {

using Sha256Digest = std::array<uint8_t, 32>;

struct ApiKeyRecord {
  std::string id;
  Sha256Digest hash{};
  Role role = Role::kUser;
  std::vector<std::string> models;  // empty: every served model
  std::vector<std::string> scopes;
  int64_t requests_per_minute = 0;  // 0: the server-wide default
  int64_t tokens_per_minute = 0;
  std::string tenant;  // empty: the key id
};

// "sha256:<lower-case hex>" of `key`, the form the keys file stores.
std::string hash_api_key(std::string_view key);
Sha256Digest sha256(std::string_view bytes);

// Parses a role name; nullopt for anything but "admin", "user", "metrics".
std::optional<Role> parse_role(std::string_view name);

class ApiKeyStore {
 public:
  // Throws Error(kInvalidArgument) for duplicate ids or hashes.
  explicit ApiKeyStore(std::vector<ApiKeyRecord> records);

  // Parses the YAML text; errors name `origin`, the entry index and the field, never a hash.
  static ApiKeyStore parse(std::string_view yaml_text, std::string_view origin);
  static ApiKeyStore load(const std::string& path);

  // The record whose hash is SHA-256(presented_key), or null. Every record's digest is
  // compared in full with CRYPTO_memcmp and the scan never stops early, so the time taken does
  // not depend on which record (if any) matches or on how long a prefix matched.
  const ApiKeyRecord* find(std::string_view presented_key) const;

  size_t size() const { return records_.size(); }

 private:
  std::vector<ApiKeyRecord> records_;
};

// The identity a matched key grants.
Principal principal_from_key(const ApiKeyRecord& record);

}  // namespace autoglm::security
