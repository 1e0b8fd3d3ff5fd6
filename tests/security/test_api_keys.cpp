// API keys file parsing (every error names the file, entry and field, never a hash) and the
// lookup (full-digest comparison: a near-miss digest never matches; every position found).
#include <gtest/gtest.h>

#include <cctype>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/error.h"
#include "security/api_keys.h"

namespace autoglm::security {
namespace {

// Concatenation by append: gcc 12 -O3 warns (-Wrestrict, a false positive) on
// "literal" + std::string chains.
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string text;
  for (std::string_view part : parts) text.append(part);
  return text;
}

std::string entry(const std::string& id, const std::string& key) {
  return cat({"  - {id: ", id, ", hash: \"", hash_api_key(key), "\", role: user}\n"});
}

// keys: [{id: a, hash: "<hash of x>", role: user<extra>}]
std::string one_key(std::string_view extra, std::string_view hash = {}) {
  const std::string good = hash_api_key("x");
  return cat(
      {"keys: [{id: a, hash: \"", hash.empty() ? std::string_view(good) : hash, "\"", extra, "}]"});
}

std::string parse_error(const std::string& yaml) {
  try {
    ApiKeyStore::parse(yaml, "keys.yaml");
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(ApiKeys, HashHasThePrefixAndSha256Hex) {
  // SHA-256("abc"), FIPS 180-2 test vector.
  EXPECT_EQ(hash_api_key("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ApiKeys, ParsesEveryField) {
  ApiKeyStore store = ApiKeyStore::parse(
      cat({"keys:\n  - id: ops\n    hash: \"", hash_api_key("secret-ops"),
           "\"\n    role: admin\n    models: [glm-a, glm-b]\n    scopes: [reload]\n"
           "    rpm: 60\n    tpm: 1000\n    tenant: team-a\n",
           entry("u", "secret-user"), "  - {id: m, hash: \"", hash_api_key("secret-m"),
           "\", role: metrics}\n"}),
      "keys.yaml");
  ASSERT_EQ(store.size(), 3u);
  const ApiKeyRecord* ops = store.find("secret-ops");
  ASSERT_NE(ops, nullptr);
  EXPECT_EQ(ops->id, "ops");
  EXPECT_EQ(ops->role, Role::kAdmin);
  EXPECT_EQ(ops->models, (std::vector<std::string>{"glm-a", "glm-b"}));
  EXPECT_EQ(ops->scopes, (std::vector<std::string>{"reload"}));
  EXPECT_EQ(ops->requests_per_minute, 60);
  EXPECT_EQ(ops->tokens_per_minute, 1000);
  Principal principal = principal_from_key(*ops);
  EXPECT_EQ(principal.id, "ops");
  EXPECT_EQ(principal.kind, CredentialKind::kApiKey);
  EXPECT_EQ(principal.tenant, "team-a");
  EXPECT_TRUE(principal.may_use_model("glm-b"));
  EXPECT_FALSE(principal.may_use_model("glm-c"));
  const ApiKeyRecord* user = store.find("secret-user");
  ASSERT_NE(user, nullptr);
  EXPECT_TRUE(user->models.empty());
  EXPECT_EQ(principal_from_key(*user).tenant, "u");  // tenant defaults to the id
  EXPECT_TRUE(principal_from_key(*user).may_use_model("anything"));
  EXPECT_EQ(store.find("secret-m")->role, Role::kMetrics);
}

TEST(ApiKeys, UppercaseHexIsAccepted) {
  std::string hash = hash_api_key("k");
  for (size_t i = 7; i < hash.size(); ++i) hash[i] = static_cast<char>(std::toupper(hash[i]));
  ApiKeyStore store =
      ApiKeyStore::parse(cat({"keys: [{id: a, hash: \"", hash, "\", role: user}]"}), "f");
  EXPECT_NE(store.find("k"), nullptr);
}

TEST(ApiKeys, FindsEveryPositionAndRejectsOthers) {
  std::string yaml = "keys:\n";
  for (int i = 0; i < 50; ++i) {
    yaml += entry(cat({"k", std::to_string(i)}), cat({"key-", std::to_string(i)}));
  }
  ApiKeyStore store = ApiKeyStore::parse(yaml, "keys.yaml");
  for (int i = 0; i < 50; ++i) {
    const ApiKeyRecord* record = store.find(cat({"key-", std::to_string(i)}));
    ASSERT_NE(record, nullptr) << i;
    EXPECT_EQ(record->id, cat({"k", std::to_string(i)}));
  }
  EXPECT_EQ(store.find("key-50"), nullptr);
  EXPECT_EQ(store.find(""), nullptr);
  EXPECT_EQ(store.find("key-1 "), nullptr);
  EXPECT_EQ(ApiKeyStore({}).find("key-1"), nullptr);
}

TEST(ApiKeys, DigestThatDiffersOnlyInItsLastByteDoesNotMatch) {
  ApiKeyRecord near_miss;
  near_miss.id = "near";
  near_miss.hash = sha256("the-key");
  near_miss.hash.back() ^= 1;  // 31 of 32 bytes equal: a prefix match must not be enough
  ApiKeyRecord other;
  other.id = "other";
  other.hash = sha256("other-key");
  ApiKeyStore store({near_miss, other});
  EXPECT_EQ(store.find("the-key"), nullptr);
  EXPECT_EQ(store.find("other-key")->id, "other");
}

TEST(ApiKeys, FileErrorsNameTheEntryAndField) {
  const std::string good = hash_api_key("x");
  EXPECT_NE(parse_error("keys: [").find("malformed YAML"), std::string::npos);
  EXPECT_NE(parse_error("- a\n").find("'keys' list"), std::string::npos);
  EXPECT_NE(parse_error(cat({"keys: [{hash: \"", good, "\", role: user}]"})).find("keys[0]: 'id'"),
            std::string::npos);
  EXPECT_NE(parse_error("keys: [{id: a, role: user}]").find("'hash' is required"),
            std::string::npos);
  EXPECT_NE(parse_error("keys: [{id: a, hash: \"md5:00\", role: user}]").find("sha256:"),
            std::string::npos);
  std::string bad_hex = good;
  bad_hex.back() = 'g';
  EXPECT_NE(parse_error(one_key(", role: user", bad_hex)).find("not hex"), std::string::npos);
  EXPECT_NE(parse_error(one_key(", role: root")).find("'role'"), std::string::npos);
  EXPECT_NE(parse_error(one_key("")).find("'role' is required"), std::string::npos);
  EXPECT_NE(parse_error(one_key(", role: user, rpm: -1")).find("'rpm'"), std::string::npos);
  EXPECT_NE(parse_error(one_key(", role: user, tpm: lots")).find("'tpm'"), std::string::npos);
  EXPECT_NE(parse_error(one_key(", role: user, models: glm")).find("'models' must be a list"),
            std::string::npos);
  EXPECT_NE(parse_error(one_key(", role: user, key: plain")).find("unknown field 'key'"),
            std::string::npos);
  EXPECT_NE(
      parse_error(cat({"keys:\n", entry("a", "x"), entry("a", "y")})).find("duplicate API key id"),
      std::string::npos);
  EXPECT_NE(parse_error(cat({"keys:\n", entry("a", "x"), entry("b", "x")})).find("repeats"),
            std::string::npos);
  // Errors name the file and never the hash.
  std::string message = parse_error(cat({"keys:\n", entry("a", "x"), entry("b", "x")}));
  EXPECT_NE(message.find("keys.yaml"), std::string::npos);
  EXPECT_EQ(message.find(good.substr(7)), std::string::npos);
}

TEST(ApiKeys, MissingFileIsNotFound) {
  try {
    ApiKeyStore::load("/nonexistent/keys.yaml");
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  }
}

TEST(ApiKeys, RoleNames) {
  EXPECT_EQ(parse_role("admin"), Role::kAdmin);
  EXPECT_EQ(parse_role("user"), Role::kUser);
  EXPECT_EQ(parse_role("metrics"), Role::kMetrics);
  EXPECT_EQ(parse_role("Admin"), std::nullopt);
  EXPECT_EQ(parse_role(""), std::nullopt);
}

}  // namespace
}  // namespace autoglm::security
