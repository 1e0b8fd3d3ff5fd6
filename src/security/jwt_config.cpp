// load_jwt_config (declared in jwt_verifier.h): reads the JWT section of the auth
// configuration from YAML. Unknown keys are errors (a typo such as "audiance" must not
// silently turn a check off), and every error names the file and the key at fault. Key
// material is checked here too by building a one-key verifier, so a bad PEM is reported with
// the file it came from rather than at the first request.
// Thread ownership: none (called by whoever loads or reloads the configuration).
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "security/jwt_verifier.h"

namespace autoglm::security {
namespace {

namespace fs = std::filesystem;

class ConfigReader {
 public:
  explicit ConfigReader(std::string path)
      : path_(std::move(path)), dir_(fs::path(path_).parent_path()) {}

  [[noreturn]] void error(const std::string& key, const std::string& reason) const {
    fail(ErrorCode::kInvalidArgument, path_ + ": " + key + ": " + reason);
  }

  void check_keys(const YAML::Node& map, const std::string& where,
                  const std::set<std::string>& allowed) const {
    if (!map.IsMap()) error(where, "must be a mapping");
    for (const auto& entry : map) {
      const std::string key = entry.first.as<std::string>();
      if (allowed.count(key) == 0) error(where.empty() ? key : where + "." + key, "unknown key");
    }
  }

  std::string scalar(const YAML::Node& map, const std::string& key, const std::string& where,
                     std::string fallback = {}) const {
    const YAML::Node node = map[key];
    if (!node) return fallback;
    if (!node.IsScalar()) error(where + key, "must be a string");
    return node.as<std::string>();
  }

  // Reads a key file (relative paths resolve against the config file's directory).
  std::string read_file(const std::string& relative, const std::string& key) const {
    fs::path p(relative);
    if (p.is_relative()) p = dir_ / p;
    std::ifstream in(p, std::ios::binary);
    if (!in) error(key, "cannot read " + p.string());
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  fs::path dir_;
};

JwtAlgorithm parse_algorithm(const ConfigReader& reader, const std::string& text,
                             const std::string& key) {
  if (text == "HS256") return JwtAlgorithm::kHS256;
  if (text == "RS256") return JwtAlgorithm::kRS256;
  if (text == "EdDSA") return JwtAlgorithm::kEdDSA;
  reader.error(key, "alg must be HS256, RS256 or EdDSA");
}

JwtKey read_key(const ConfigReader& reader, const YAML::Node& node, size_t index) {
  const std::string where = "keys[" + std::to_string(index) + "]";
  reader.check_keys(node, where, {"kid", "alg", "secret_file", "public_key_file"});
  JwtKey key;
  key.kid = reader.scalar(node, "kid", where + ".");
  key.algorithm = parse_algorithm(reader, reader.scalar(node, "alg", where + "."), where + ".alg");
  const bool hmac = key.algorithm == JwtAlgorithm::kHS256;
  const char* wanted = hmac ? "secret_file" : "public_key_file";
  const char* unwanted = hmac ? "public_key_file" : "secret_file";
  if (node[unwanted]) reader.error(where + "." + unwanted, "not used with this alg");
  const std::string file = reader.scalar(node, wanted, where + ".");
  if (file.empty()) reader.error(where + "." + wanted, "required");
  key.material = reader.read_file(file, where + "." + wanted);
  if (hmac) {
    // `openssl rand -hex 32 > secret` leaves a newline that is not part of the secret.
    while (!key.material.empty() && (key.material.back() == '\n' || key.material.back() == '\r')) {
      key.material.pop_back();
    }
  }
  try {
    JwtVerifier probe({key}, JwtPolicy{});
  } catch (const Error& e) {
    reader.error(where, e.what());
  }
  return key;
}

JwtConfig read_config(const ConfigReader& reader, const YAML::Node& section) {
  reader.check_keys(
      section, "",
      {"issuer", "audience", "leeway_s", "role_claim", "scope_claim", "models_claim", "keys"});
  JwtConfig config;
  config.policy.issuer = reader.scalar(section, "issuer", "");
  config.policy.audience = reader.scalar(section, "audience", "");
  config.policy.role_claim = reader.scalar(section, "role_claim", "", "role");
  config.policy.scope_claim = reader.scalar(section, "scope_claim", "", "scope");
  config.policy.models_claim = reader.scalar(section, "models_claim", "", "models");
  if (const YAML::Node leeway = section["leeway_s"]) {
    int seconds = -1;
    if (!leeway.IsScalar() || !YAML::convert<int>::decode(leeway, seconds) || seconds < 0 ||
        seconds > 60) {
      reader.error("leeway_s", "must be an integer from 0 to 60");
    }
    config.policy.leeway = std::chrono::seconds(seconds);
  }
  const YAML::Node keys = section["keys"];
  if (!keys || !keys.IsSequence() || keys.size() == 0) {
    reader.error("keys", "a non-empty list of keys is required");
  }
  std::set<std::string> kids;
  for (size_t i = 0; i < keys.size(); ++i) {
    config.keys.push_back(read_key(reader, keys[i], i));
    if (!kids.insert(config.keys.back().kid).second) {
      reader.error("keys[" + std::to_string(i) + "].kid", "duplicate kid");
    }
    if (keys.size() > 1 && config.keys.back().kid.empty()) {
      reader.error("keys[" + std::to_string(i) + "].kid", "required when several keys are listed");
    }
  }
  return config;
}

}  // namespace

JwtConfig load_jwt_config(const std::string& yaml_path) {
  const ConfigReader reader(yaml_path);
  YAML::Node root;
  try {
    root = YAML::LoadFile(yaml_path);
  } catch (const YAML::BadFile&) {
    fail(ErrorCode::kNotFound, yaml_path + ": cannot read the JWT configuration");
  } catch (const YAML::Exception& e) {
    fail(ErrorCode::kInvalidArgument, yaml_path + ": " + e.what());
  }
  try {
    // Either the whole file is the JWT section, or it sits under "jwt:" beside other sections.
    if (root.IsMap() && root["jwt"]) return read_config(reader, root["jwt"]);
    return read_config(reader, root);
  } catch (const YAML::Exception& e) {
    fail(ErrorCode::kInvalidArgument, yaml_path + ": " + e.what());
  }
}

}  // namespace autoglm::security
