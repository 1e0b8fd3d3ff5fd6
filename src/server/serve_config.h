// `autoglm serve` configuration: every setting once, in a table (key, help, how to apply a
// string value), so that the YAML file, the AUTOGLM_<KEY> environment variables and the
// --<key> flags all accept exactly the same settings. Precedence: flags > environment > file >
// defaults. Unknown keys in the file are errors naming the key.
// Thread ownership: pure functions and immutable tables, any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "autoglm/engine.h"
#include "security/audit_log.h"
#include "security/audit_policy.h"
#include "server/auth_settings.h"
#include "server/cache/response_cache.h"
#include "server/circuit_breaker.h"
#include "server/http_server.h"
#include "server/models/model_spec.h"

namespace autoglm::server {

// (key, value) pairs from one source, in the order they were given.
using ConfigLayer = std::vector<std::pair<std::string, std::string>>;

// Where a ServeConfig came from, kept so that a reload (SIGHUP, POST /admin/reload) re-reads the
// file under the same environment and flags, which still take precedence over it.
struct ConfigOrigin {
  std::string file;  // the --config / AUTOGLM_CONFIG path; empty: none
  ConfigLayer env;
  ConfigLayer flags;
};

struct ServeConfig {
  HttpServerOptions http;
  EngineOptions engine;           // model_path: the first model's directory (check_config, signing)
  std::string served_model_name;  // empty: the model directory's name
  // Model management (server/models/, docs/OPERATIONS.md "Model management"). `model` as given:
  // comma-separated NAME=DIR or DIR entries; `models` the parsed list, set by
  // resolve_serve_config (the first is the default model).
  std::string model_entries;
  std::vector<models::ModelSpec> models;
  std::string preload_models = "all";  // "all", "none" or a comma list of names
  std::string pinned_models;           // comma list of names never evicted; "all" too
  uint64_t model_memory_budget = 0;    // bytes the loaded models share; 0: auto
  std::chrono::milliseconds model_load_wait{120'000};  // a request's wait for a load
  // Per-caller rate-limit defaults (a key's own quota overrides them); 0: unlimited. Reloadable.
  int64_t rate_limit_rpm = 0;
  int64_t rate_limit_tpm = 0;
  ConfigOrigin origin;  // set by the caller that resolved the layers; not a setting
  std::chrono::milliseconds drain_timeout{30'000};
  std::chrono::milliseconds watchdog_stall{30'000};  // /health fails after this long stuck
  bool warmup = true;                                // one short generation before ready
  CircuitBreakerOptions breaker;                     // probe_timeout is set from watchdog_stall
  std::string log_level = "info";
  // The tamper-evident audit log (settings audit_*); an empty path turns auditing off.
  security::AuditLogOptions audit;
  security::AuditFailurePolicy audit_failure_policy = security::AuditFailurePolicy::kOpen;
  // Model integrity (issue 8): refuse a model unless its autoglm-manifest.json is signed by one
  // of the trusted Ed25519 public keys (PEM paths, comma-separated) and every file matches.
  bool require_signed_models = false;
  std::string trusted_keys;
  AuthSettings auth;           // auth, api_keys_file, jwt_config_file, auth_failures_per_minute
  cache::CacheSettings cache;  // the response cache (settings cache_*)
};

struct ConfigSetting {
  std::string key;  // snake_case; flag --key-with-dashes; env AUTOGLM_KEY
  std::string help;
  std::function<void(ServeConfig&, const std::string&)> apply;  // throws on a bad value
  std::function<std::string(const ServeConfig&)> show;          // the value, for --help
};

const std::vector<ConfigSetting>& serve_config_settings();

std::string flag_name(std::string_view key);  // "max_num_seqs" -> "--max-num-seqs"
std::string env_name(std::string_view key);   // "max_num_seqs" -> "AUTOGLM_MAX_NUM_SEQS"

// A YAML mapping of setting keys to scalars (`model` may be a list too: its items are joined
// with commas). Throws Error(kInvalidArgument) for an unknown key, a non-scalar value or
// malformed YAML, naming `origin` (the file path).
ConfigLayer parse_config_yaml(std::string_view text, std::string_view origin);
ConfigLayer read_config_file(const std::string& path);
// Every AUTOGLM_<KEY> that `lookup` finds (normally getenv).
ConfigLayer config_from_env(const std::function<const char*(const char*)>& lookup);

// Defaults, then file, then env, then flags. Values are checked as they are applied; the
// error names the key and where the value came from.
ServeConfig resolve_serve_config(const ConfigLayer& file, const ConfigLayer& env,
                                 const ConfigLayer& flags);

// Re-reads origin.file (when set) and resolves it with origin's env and flags again, for the
// reloadable settings. Throws, naming the file, when it cannot be read or has a bad value.
ServeConfig reread_serve_config(const ConfigOrigin& origin);

}  // namespace autoglm::server
