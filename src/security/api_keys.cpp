// The keys file parser and the constant-time key lookup (see api_keys.h).
// Thread ownership: pure functions and an immutable store, any thread.
#include "security/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"

namespace autoglm::security {
namespace {

constexpr std::string_view kHashPrefix = "sha256:";
constexpr int64_t kMaxQuota = int64_t{1} << 40;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

[[noreturn]] void entry_error(std::string_view origin, size_t index, const std::string& what) {
  fail(ErrorCode::kInvalidArgument,
       "API keys file " + std::string(origin) + ": keys[" + std::to_string(index) + "]: " + what);
}

Sha256Digest parse_hash(const YAML::Node& node, std::string_view origin, size_t index) {
  if (!node || !node.IsScalar()) entry_error(origin, index, "'hash' is required");
  const std::string text = node.Scalar();
  const size_t hex_length = 2 * Sha256Digest{}.size();
  if (text.rfind(kHashPrefix, 0) != 0 || text.size() != kHashPrefix.size() + hex_length) {
    entry_error(origin, index, "'hash' must be \"sha256:\" followed by 64 hex digits");
  }
  Sha256Digest digest{};
  for (size_t i = 0; i < digest.size(); ++i) {
    int high = hex_value(text[kHashPrefix.size() + 2 * i]);
    int low = hex_value(text[kHashPrefix.size() + 2 * i + 1]);
    if (high < 0 || low < 0) entry_error(origin, index, "'hash' has a character that is not hex");
    digest[i] = static_cast<uint8_t>(high * 16 + low);
  }
  return digest;
}

std::vector<std::string> parse_names(const YAML::Node& node, std::string_view origin, size_t index,
                                     const std::string& field) {
  std::vector<std::string> names;
  if (!node || node.IsNull()) return names;
  if (!node.IsSequence()) entry_error(origin, index, "'" + field + "' must be a list of names");
  for (const auto& item : node) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      entry_error(origin, index, "'" + field + "' must hold non-empty names");
    }
    names.push_back(item.Scalar());
  }
  return names;
}

int64_t parse_quota(const YAML::Node& node, std::string_view origin, size_t index,
                    const std::string& field) {
  if (!node || node.IsNull()) return 0;
  int64_t value = -1;
  try {
    value = node.as<int64_t>();
  } catch (const YAML::Exception&) {
    entry_error(origin, index, "'" + field + "' must be a whole number");
  }
  if (value < 0 || value > kMaxQuota) {
    entry_error(origin, index, "'" + field + "' must be in [0, 2^40]");
  }
  return value;
}

ApiKeyRecord parse_entry(const YAML::Node& entry, std::string_view origin, size_t index) {
  static const std::set<std::string> kFields = {"id",  "hash", "role",   "models",
                                                "rpm", "tpm",  "tenant", "scopes"};
  if (!entry.IsMap()) entry_error(origin, index, "each key must be a mapping");
  for (const auto& field : entry) {
    const std::string name = field.first.as<std::string>();
    if (kFields.count(name) == 0) entry_error(origin, index, "unknown field '" + name + "'");
  }
  ApiKeyRecord record;
  if (!entry["id"] || !entry["id"].IsScalar() || entry["id"].Scalar().empty()) {
    entry_error(origin, index, "'id' is required");
  }
  record.id = entry["id"].Scalar();
  record.hash = parse_hash(entry["hash"], origin, index);
  if (!entry["role"] || !entry["role"].IsScalar()) entry_error(origin, index, "'role' is required");
  std::optional<Role> role = parse_role(entry["role"].Scalar());
  if (!role) entry_error(origin, index, "'role' must be admin, user or metrics");
  record.role = *role;
  record.models = parse_names(entry["models"], origin, index, "models");
  record.scopes = parse_names(entry["scopes"], origin, index, "scopes");
  record.requests_per_minute = parse_quota(entry["rpm"], origin, index, "rpm");
  record.tokens_per_minute = parse_quota(entry["tpm"], origin, index, "tpm");
  if (entry["tenant"]) {
    if (!entry["tenant"].IsScalar()) entry_error(origin, index, "'tenant' must be a name");
    record.tenant = entry["tenant"].Scalar();
  }
  return record;
}

}  // namespace

Sha256Digest sha256(std::string_view bytes) {
  Sha256Digest digest{};
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != digest.size()) {
    fail(ErrorCode::kInternal, "SHA-256 failed");
  }
  return digest;
}

std::string hash_api_key(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text(kHashPrefix);
  for (uint8_t byte : sha256(key)) {
    text += kHex[byte >> 4];
    text += kHex[byte & 15];
  }
  return text;
}

std::optional<Role> parse_role(std::string_view name) {
  if (name == "admin") return Role::kAdmin;
  if (name == "user") return Role::kUser;
  if (name == "metrics") return Role::kMetrics;
  return std::nullopt;
}

ApiKeyStore::ApiKeyStore(std::vector<ApiKeyRecord> records) : records_(std::move(records)) {
  std::set<std::string> ids;
  std::set<Sha256Digest> hashes;
  for (const ApiKeyRecord& record : records_) {
    if (!ids.insert(record.id).second) {
      fail(ErrorCode::kInvalidArgument, "duplicate API key id '" + record.id + "'");
    }
    if (!hashes.insert(record.hash).second) {
      fail(ErrorCode::kInvalidArgument, "API key '" + record.id + "' repeats another key's hash");
    }
  }
}

ApiKeyStore ApiKeyStore::parse(std::string_view yaml_text, std::string_view origin) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& error) {
    fail(ErrorCode::kInvalidArgument,
         "API keys file " + std::string(origin) + ": malformed YAML: " + error.what());
  }
  if (!root.IsMap() || !root["keys"] || !root["keys"].IsSequence()) {
    fail(ErrorCode::kInvalidArgument,
         "API keys file " + std::string(origin) + ": expected a mapping with a 'keys' list");
  }
  std::vector<ApiKeyRecord> records;
  size_t index = 0;
  for (const auto& entry : root["keys"]) records.push_back(parse_entry(entry, origin, index++));
  try {
    return ApiKeyStore(std::move(records));
  } catch (const Error& error) {
    fail(ErrorCode::kInvalidArgument, "API keys file " + std::string(origin) + ": " + error.what());
  }
}

ApiKeyStore ApiKeyStore::load(const std::string& path) {
  std::ifstream file(path);
  if (!file) fail(ErrorCode::kNotFound, "cannot read API keys file " + path);
  std::ostringstream text;
  text << file.rdbuf();
  return parse(text.str(), path);
}

const ApiKeyRecord* ApiKeyStore::find(std::string_view presented_key) const {
  const Sha256Digest presented = sha256(presented_key);
  // Branch-free selection: every record is compared in full, and the match (at most one:
  // hashes are unique) is folded into `found` with a mask instead of returning early.
  uintptr_t found = 0;
  for (const ApiKeyRecord& record : records_) {
    const uintptr_t differs = static_cast<uintptr_t>(
        CRYPTO_memcmp(record.hash.data(), presented.data(), presented.size()) != 0);
    const uintptr_t mask = differs - 1;  // all ones when equal, zero otherwise
    found |= reinterpret_cast<uintptr_t>(&record) & mask;
  }
  return reinterpret_cast<const ApiKeyRecord*>(found);
}

Principal principal_from_key(const ApiKeyRecord& record) {
  Principal principal;
  principal.id = record.id;
  principal.kind = CredentialKind::kApiKey;
  principal.role = record.role;
  principal.allowed_models = record.models;
  principal.scopes = record.scopes;
  principal.tenant = record.tenant.empty() ? record.id : record.tenant;
  principal.requests_per_minute = record.requests_per_minute;
  principal.tokens_per_minute = record.tokens_per_minute;
  return principal;
}

}  // namespace autoglm::security
