// The settings table and the layering of file, environment and flags (see serve_config.h).
// Thread ownership: pure functions, any thread.
#include "server/serve_config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace autoglm::server {
namespace {

int64_t parse_integer(const std::string& key, const std::string& value, int64_t min, int64_t max) {
  int64_t parsed = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (ec != std::errc() || end != value.data() + value.size() || parsed < min || parsed > max) {
    fail(ErrorCode::kInvalidArgument, key + " must be an integer in [" + std::to_string(min) +
                                          ", " + std::to_string(max) + "], not '" + value + "'");
  }
  return parsed;
}

std::chrono::milliseconds parse_seconds(const std::string& key, const std::string& value) {
  double seconds = 0;
  std::istringstream stream(value);
  stream >> seconds;
  if (value.empty() || stream.fail() || !stream.eof() || !std::isfinite(seconds) || seconds <= 0 ||
      seconds > 86400.0 * 365) {
    fail(ErrorCode::kInvalidArgument,
         key + " must be a positive number of seconds, not '" + value + "'");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(seconds * 1000)));
}

bool parse_bool(const std::string& key, const std::string& value) {
  if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
  if (value == "false" || value == "0" || value == "no" || value == "off") return false;
  fail(ErrorCode::kInvalidArgument, key + " must be true or false, not '" + value + "'");
}

std::string show_seconds(std::chrono::milliseconds ms) {
  std::ostringstream out;
  out << static_cast<double>(ms.count()) / 1000.0;
  return out.str();
}

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// A setting stored in an integer field.
template <class Field>
ConfigSetting integer_setting(std::string key, std::string help, Field field, int64_t min,
                              int64_t max) {
  return {
      key, std::move(help),
      [key, field, min, max](ServeConfig& c, const std::string& v) {
        using Target = std::remove_reference_t<decltype(field(c))>;
        field(c) = static_cast<Target>(parse_integer(key, v, min, max));
      },
      [field](const ServeConfig& c) { return std::to_string(field(const_cast<ServeConfig&>(c))); }};
}

template <class Field>
ConfigSetting seconds_setting(std::string key, std::string help, Field field) {
  return {
      key, std::move(help),
      [key, field](ServeConfig& c, const std::string& v) { field(c) = parse_seconds(key, v); },
      [field](const ServeConfig& c) { return show_seconds(field(const_cast<ServeConfig&>(c))); }};
}

template <class Field>
ConfigSetting string_setting(std::string key, std::string help, Field field) {
  return {key, std::move(help), [field](ServeConfig& c, const std::string& v) { field(c) = v; },
          [field](const ServeConfig& c) { return field(const_cast<ServeConfig&>(c)); }};
}

// A string setting whose value `check` validates first (it throws on an unknown value).
template <class Field>
ConfigSetting checked_string_setting(std::string key, std::string help,
                                     bool (*check)(const std::string&), Field field) {
  return {key, std::move(help),
          [check, field](ServeConfig& c, const std::string& v) {
            check(v);
            field(c) = v;
          },
          [field](const ServeConfig& c) { return field(const_cast<ServeConfig&>(c)); }};
}

template <class Field>
ConfigSetting bool_setting(std::string key, std::string help, Field field) {
  return {key, std::move(help),
          [key, field](ServeConfig& c, const std::string& v) { field(c) = parse_bool(key, v); },
          [field](const ServeConfig& c) {
            return std::string(field(const_cast<ServeConfig&>(c)) ? "true" : "false");
          }};
}

// The CUDA backend's settings: its memory budget and decode CUDA graphs.
void add_gpu_settings(std::vector<ConfigSetting>& s) {
  using C = ServeConfig;
  const std::string key = "gpu_memory_fraction";
  s.push_back(
      {key,
       "Share of the GPU's total memory for weights, workspace and the KV pool, taken once at "
       "start; the KV pool gets what is left (logged at start: blocks and concurrent tokens)",
       [key](C& c, const std::string& v) {
         double parsed = 0;
         std::istringstream stream(v);
         stream >> parsed;
         if (v.empty() || stream.fail() || !stream.eof() || !(parsed > 0.0 && parsed <= 1.0)) {
           fail(ErrorCode::kInvalidArgument, key + " must be a number in (0, 1], not '" + v + "'");
         }
         c.engine.memory_fraction = parsed;
       },
       [](const C& c) {
         std::ostringstream out;
         out << (c.engine.memory_fraction > 0 ? c.engine.memory_fraction : 0.90);
         return out.str();
       }});
  s.push_back(bool_setting("cuda_graphs",
                           "Replay decode steps from CUDA graphs (one per batch and context "
                           "bucket, captured on first use)",
                           [](C& c) -> bool& { return c.engine.cuda_graphs; }));
  s.push_back(checked_string_setting(
      "kv_cache_dtype",
      "KV cache element type on the GPU: auto (the model's activation type) or fp8 (E4M3, "
      "unscaled: half the bytes per token, about twice the tokens held; values saturate at "
      "+-448)",
      kv_cache_is_fp8, [](C& c) -> std::string& { return c.engine.kv_cache_dtype; }));
  s.push_back(checked_string_setting(
      "quantization",
      "Weights on the GPU: none (the checkpoint's) or fp8 (the layer projections quantized at "
      "load to E4M3 with a scale per output channel, their inputs per token: W8A8 on the FP8 "
      "tensor cores, half the weight bytes; the logits move)",
      weights_are_fp8, [](C& c) -> std::string& { return c.engine.quantization; }));
  s.push_back(bool_setting("overlap_scheduling",
                           "Schedule and submit the next step while the device runs this one "
                           "(steps with penalties wait for their samples)",
                           [](C& c) -> bool& { return c.engine.overlap_scheduling; }));
}

std::vector<ConfigSetting> make_settings();

}  // namespace

const std::vector<ConfigSetting>& serve_config_settings() {
  static const std::vector<ConfigSetting> settings = make_settings();
  return settings;
}

namespace {

// The audit log's settings (security/audit_log.h, docs/SECURITY.md "Audit log").
void add_audit_settings(std::vector<ConfigSetting>& s) {
  using C = ServeConfig;
  s.push_back(string_setting("audit_log", "Audit log file (JSON lines, hash-chained); empty: off",
                             [](C& c) -> std::string& { return c.audit.path; }));
  s.push_back(integer_setting(
      "audit_max_bytes", "Rotate the audit log before it grows past this many bytes (0: never)",
      [](C& c) -> uint64_t& { return c.audit.max_bytes; }, 0, kInt64Max));
  s.push_back(integer_setting(
      "audit_max_files", "Rotated audit files kept (audit.log.1 .. audit.log.N)",
      [](C& c) -> int& { return c.audit.max_files; }, 1, 100000));
  s.push_back(
      {"audit_fsync",
       "When audit records reach the disk: every_record (fsync each) or interval (fsync each "
       "second; admin records always at once)",
       [](C& c, const std::string& v) { c.audit.fsync = security::parse_audit_fsync(v); },
       [](const C& c) { return std::string(security::audit_fsync_name(c.audit.fsync)); }});
  s.push_back({"audit_failure_policy",
               "When an inference request's audit record cannot be written: open (serve) or "
               "closed (503); admin routes always fail closed",
               [](C& c, const std::string& v) {
                 c.audit_failure_policy = security::parse_audit_failure_policy(v);
               },
               [](const C& c) {
                 return std::string(security::audit_failure_policy_name(c.audit_failure_policy));
               }});
}

// Model integrity (issue 8, model signing).
void add_signing_settings(std::vector<ConfigSetting>& s) {
  using C = ServeConfig;
  s.push_back(bool_setting(
      "require_signed_models",
      "Refuse to load a model unless its autoglm-manifest.json is signed by a trusted key and "
      "every file matches (autoglm sign / verify)",
      [](C& c) -> bool& { return c.require_signed_models; }));
  s.push_back(string_setting("trusted_keys",
                             "Trusted Ed25519 public keys (PEM files, comma-separated) for "
                             "require_signed_models",
                             [](C& c) -> std::string& { return c.trusted_keys; }));
}

// Authentication (server/auth_settings.h, server/auth_middleware.h).
void add_auth_settings(std::vector<ConfigSetting>& s) {
  using C = ServeConfig;
  s.push_back(string_setting("auth", "auto (off on a loopback host, on otherwise), on or off",
                             [](C& c) -> std::string& { return c.auth.mode; }));
  s.push_back(string_setting("api_keys_file", "YAML file of API key hashes, roles and models",
                             [](C& c) -> std::string& { return c.auth.api_keys_file; }));
  s.push_back(string_setting("jwt_config_file", "YAML file of JWT issuer, audience and keys",
                             [](C& c) -> std::string& { return c.auth.jwt_config_file; }));
  s.push_back(integer_setting(
      "auth_failures_per_minute", "Failed authentications per client IP per minute before 429",
      [](C& c) -> int64_t& { return c.auth.failures_per_minute; }, 1, 1'000'000));
}

// The circuit breaker (circuit_breaker.h) and, in test builds only, fault injection.
void add_breaker_settings(std::vector<ConfigSetting>& s) {
  using C = ServeConfig;
  s.push_back(integer_setting(
      "breaker_failure_threshold",
      "Consecutive failed engine steps that open the circuit breaker (0: never)",
      [](C& c) -> int32_t& { return c.breaker.failure_threshold; }, 0, 1'000'000));
  s.push_back(seconds_setting(
      "breaker_cooldown", "Seconds the open breaker refuses inference before it probes the engine",
      [](C& c) -> std::chrono::milliseconds& { return c.breaker.cooldown; }));
  s.push_back(seconds_setting(
      "breaker_max_cooldown", "Seconds the cool-down may grow to, doubling on each failed probe",
      [](C& c) -> std::chrono::milliseconds& { return c.breaker.max_cooldown; }));
  s.push_back(
      seconds_setting("breaker_window", "Seconds within which consecutive engine failures add up",
                      [](C& c) -> std::chrono::milliseconds& { return c.breaker.failure_window; }));
#ifdef AUTOGLM_FAULT_INJECTION
  s.push_back(string_setting(
      "inject_fault", "TEST BUILDS ONLY: throw:N, nan:N or hang fails the next forward calls",
      [](C& c) -> std::string& { return c.engine.fault_injection; }));
#endif
}

// The response cache (server/cache/response_cache.h, docs/OPERATIONS.md "Response cache").
void add_cache_settings(std::vector<ConfigSetting>& s) {
  using C = ServeConfig;
  s.push_back(bool_setting(
      "cache", "Answer repeated deterministic requests (temperature 0 or a seed) from the cache",
      [](C& c) -> bool& { return c.cache.enabled; }));
  s.push_back(integer_setting(
      "cache_l1_bytes", "In-process response cache (L1) budget in bytes; 0: no L1",
      [](C& c) -> uint64_t& { return c.cache.l1_bytes; }, 0, kInt64Max));
  s.push_back(string_setting("cache_redis", "Redis host:port for the shared L2; empty: no L2",
                             [](C& c) -> std::string& { return c.cache.redis; }));
  s.push_back(seconds_setting("cache_ttl", "Seconds a cached answer lives in Redis",
                              [](C& c) -> std::chrono::milliseconds& { return c.cache.ttl; }));
  s.push_back(string_setting(
      "cache_key_file",
      "File of 'kid:<64 hex>' AES-256 keys for L2 values (last line encrypts); empty: the "
      "AUTOGLM_CACHE_KEY environment variable",
      [](C& c) -> std::string& { return c.cache.key_file; }));
  s.push_back({"cache_redis_timeout_ms",
               "Milliseconds a Redis connect or command may take before L2 is bypassed",
               [](C& c, const std::string& v) {
                 c.cache.redis_timeout = std::chrono::milliseconds(
                     parse_integer("cache_redis_timeout_ms", v, 1, 60000));
               },
               [](const C& c) { return std::to_string(c.cache.redis_timeout.count()); }});
  s.push_back(string_setting("cache_revision",
                             "Extra revision string in the cache key (bump to drop every entry)",
                             [](C& c) -> std::string& { return c.cache.revision; }));
}

// Model management (server/models/, docs/OPERATIONS.md "Model management").
void add_model_settings(std::vector<ConfigSetting>& s) {
  using C = ServeConfig;
  s.push_back(string_setting(
      "preload_models",
      "Models loaded at start-up, before /ready turns 200: all, none, or a comma list of names; "
      "the others load on their first request",
      [](C& c) -> std::string& { return c.preload_models; }));
  s.push_back(string_setting("pinned_models",
                             "Models never evicted or unloaded (comma list of names, or all)",
                             [](C& c) -> std::string& { return c.pinned_models; }));
  s.push_back(integer_setting(
      "model_memory_budget",
      "Bytes the loaded models share (weights + KV pool each); loading one more evicts the least "
      "recently used idle unpinned model. 0: the GPU memory the engine takes (CUDA) or the "
      "host's MemAvailable at start (CPU)",
      [](C& c) -> uint64_t& { return c.model_memory_budget; }, 0, kInt64Max));
  s.push_back(
      seconds_setting("model_load_wait",
                      "Seconds a request waits for its model to load before 503 with Retry-After",
                      [](C& c) -> std::chrono::milliseconds& { return c.model_load_wait; }));
}

std::vector<ConfigSetting> make_settings() {
  using C = ServeConfig;
  std::vector<ConfigSetting> s;
  s.push_back(string_setting(
      "model",
      "Model directory (config.json, safetensors, tokenizer), or NAME=DIR; repeat the flag (or "
      "separate with commas) to serve several models",
      [](C& c) -> std::string& { return c.model_entries; }));
  s.push_back(string_setting("served_model_name", "Model name in the API (default: dir name)",
                             [](C& c) -> std::string& { return c.served_model_name; }));
  s.push_back(string_setting("host", "Address to listen on",
                             [](C& c) -> std::string& { return c.http.host; }));
  s.push_back(integer_setting(
      "port", "TCP port (0: ephemeral)", [](C& c) -> uint16_t& { return c.http.port; }, 0, 65535));
  s.push_back(integer_setting(
      "io_threads", "I/O threads running the connections",
      [](C& c) -> int32_t& { return c.http.io_threads; }, 1, 256));
  s.push_back(string_setting("tls_cert", "PEM certificate chain; with tls_key enables TLS",
                             [](C& c) -> std::string& { return c.http.tls_cert_file; }));
  s.push_back(string_setting("tls_key", "PEM private key for tls_cert",
                             [](C& c) -> std::string& { return c.http.tls_key_file; }));
  s.push_back(integer_setting(
      "max_header_bytes", "Request line + headers limit (431 beyond)",
      [](C& c) -> uint32_t& { return c.http.limits.max_header_bytes; }, 1024, 1 << 24));
  s.push_back(integer_setting(
      "max_body_bytes", "Request body limit (413 beyond, before buffering)",
      [](C& c) -> uint64_t& { return c.http.limits.max_body_bytes; }, 1, int64_t{1} << 40));
  s.push_back(seconds_setting(
      "header_timeout",
      "Seconds to receive a request head: a new connection's from the accept, a reused one's from "
      "its first byte (slowloris)",
      [](C& c) -> std::chrono::milliseconds& { return c.http.limits.header_timeout; }));
  s.push_back(seconds_setting(
      "body_timeout", "Seconds to receive a request body",
      [](C& c) -> std::chrono::milliseconds& { return c.http.limits.body_timeout; }));
  s.push_back(seconds_setting(
      "idle_timeout", "Seconds a keep-alive connection may wait for its next request's first byte",
      [](C& c) -> std::chrono::milliseconds& { return c.http.limits.idle_timeout; }));
  s.push_back(seconds_setting(
      "write_timeout", "Seconds one write may take (an SSE client that stops reading)",
      [](C& c) -> std::chrono::milliseconds& { return c.http.limits.write_timeout; }));
  s.push_back(integer_setting(
      "max_unsent_bytes", "Queued response bytes per connection before it is dropped",
      [](C& c) -> uint64_t& { return c.http.limits.max_unsent_bytes; }, 1024, int64_t{1} << 40));
  s.push_back(integer_setting(
      "max_connections", "Open connections; beyond, new ones get 503 and are closed",
      [](C& c) -> int32_t& { return c.http.limits.max_connections; }, 1, 1 << 20));
  s.push_back(seconds_setting("drain_timeout",
                              "Seconds in-flight requests get to finish on SIGTERM/SIGINT",
                              [](C& c) -> std::chrono::milliseconds& { return c.drain_timeout; }));
  s.push_back(seconds_setting("watchdog_stall",
                              "Seconds without an engine step, work pending, before /health fails",
                              [](C& c) -> std::chrono::milliseconds& { return c.watchdog_stall; }));
  s.push_back(bool_setting("warmup", "Run one short generation before /ready turns 200",
                           [](C& c) -> bool& { return c.warmup; }));
  s.push_back(string_setting("log_level", "debug, info, warn or error",
                             [](C& c) -> std::string& { return c.log_level; }));
  s.push_back(bool_setting("log_request_bodies",
                           "Log each request body at debug level, PII-masked, cut to 4 KB",
                           [](C& c) -> bool& { return c.http.log_request_bodies; }));
  s.push_back(integer_setting(
      "rate_limit_rpm", "Requests per minute per caller (key, subject, or client IP); 0: none",
      [](C& c) -> int64_t& { return c.rate_limit_rpm; }, 0, kInt32Max));
  s.push_back(integer_setting(
      "rate_limit_tpm", "Prompt + completion tokens per minute per caller; 0: none",
      [](C& c) -> int64_t& { return c.rate_limit_tpm; }, 0, kInt64Max / 2));
  s.push_back(string_setting("device", "auto, cpu or cuda:N",
                             [](C& c) -> std::string& { return c.engine.device; }));
  s.push_back(integer_setting(
      "max_context_length", "Tokens per sequence (0: the model's maximum)",
      [](C& c) -> int64_t& { return c.engine.max_context_length; }, 0, kInt32Max));
  s.push_back(integer_setting(
      "kv_cache_bytes", "CPU KV-cache budget in bytes",
      [](C& c) -> uint64_t& { return c.engine.kv_cache_bytes; }, 1, kInt64Max));
  s.push_back(integer_setting(
      "max_num_seqs", "Sequences per engine step",
      [](C& c) -> int32_t& { return c.engine.max_num_seqs; }, 1, kInt32Max));
  s.push_back(integer_setting(
      "max_batched_tokens", "Tokens per engine step",
      [](C& c) -> int32_t& { return c.engine.max_batched_tokens; }, 1, kInt32Max));
  s.push_back(integer_setting(
      "max_queued_requests", "Waiting requests before 429",
      [](C& c) -> int32_t& { return c.engine.max_queued_requests; }, 1, kInt32Max));
  s.push_back(integer_setting(
      "max_queued_tokens", "Waiting prompt tokens before 429",
      [](C& c) -> int64_t& { return c.engine.max_queued_tokens; }, 1, kInt64Max));
  s.push_back(bool_setting("enable_prefix_caching", "Reuse KV of shared prompt prefixes",
                           [](C& c) -> bool& { return c.engine.enable_prefix_caching; }));
  add_audit_settings(s);
  add_signing_settings(s);
  add_gpu_settings(s);
  add_auth_settings(s);
  add_breaker_settings(s);
  add_cache_settings(s);
  add_model_settings(s);
  return s;
}

const ConfigSetting* find_setting(std::string_view key) {
  for (const ConfigSetting& setting : serve_config_settings()) {
    if (setting.key == key) return &setting;
  }
  return nullptr;
}

void apply_layer(ServeConfig& config, const ConfigLayer& layer, std::string_view source) {
  for (const auto& [key, value] : layer) {
    const ConfigSetting* setting = find_setting(key);
    if (setting == nullptr) {
      fail(ErrorCode::kInvalidArgument,
           "unknown config key '" + key + "' (" + std::string(source) + ")");
    }
    try {
      setting->apply(config, value);
    } catch (const Error& error) {
      fail(ErrorCode::kInvalidArgument,
           std::string(error.what()) + " (" + std::string(source) + ")");
    }
  }
}

}  // namespace

std::string flag_name(std::string_view key) {
  std::string flag = "--" + std::string(key);
  for (char& c : flag) {
    if (c == '_') c = '-';
  }
  return flag;
}

std::string env_name(std::string_view key) {
  std::string name = "AUTOGLM_";
  for (char c : key) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

ConfigLayer parse_config_yaml(std::string_view text, std::string_view origin) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& error) {
    fail(ErrorCode::kInvalidArgument,
         "config file " + std::string(origin) + ": malformed YAML: " + error.what());
  }
  ConfigLayer layer;
  if (root.IsNull()) return layer;
  if (!root.IsMap()) {
    fail(ErrorCode::kInvalidArgument,
         "config file " + std::string(origin) + ": the top level must be a mapping");
  }
  for (const auto& entry : root) {
    std::string key = entry.first.as<std::string>();
    if (find_setting(key) == nullptr) {
      fail(ErrorCode::kInvalidArgument,
           "config file " + std::string(origin) + ": unknown config key '" + key + "'");
    }
    if (key == "model" && entry.second.IsSequence()) {  // a list of NAME=DIR or DIR entries
      std::string joined;
      for (const auto& item : entry.second) {
        if (!item.IsScalar()) {
          fail(ErrorCode::kInvalidArgument,
               "config file " + std::string(origin) + ": 'model' items must be single values");
        }
        joined += (joined.empty() ? "" : ",") + item.Scalar();
      }
      layer.emplace_back(key, joined);
      continue;
    }
    if (!entry.second.IsScalar()) {
      fail(ErrorCode::kInvalidArgument,
           "config file " + std::string(origin) + ": '" + key + "' must be a single value");
    }
    layer.emplace_back(key, entry.second.Scalar());
  }
  return layer;
}

ConfigLayer read_config_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) fail(ErrorCode::kNotFound, "cannot read config file " + path);
  std::ostringstream text;
  text << file.rdbuf();
  return parse_config_yaml(text.str(), path);
}

ConfigLayer config_from_env(const std::function<const char*(const char*)>& lookup) {
  ConfigLayer layer;
  for (const ConfigSetting& setting : serve_config_settings()) {
    if (const char* value = lookup(env_name(setting.key).c_str())) {
      layer.emplace_back(setting.key, value);
    }
  }
  return layer;
}

ServeConfig resolve_serve_config(const ConfigLayer& file, const ConfigLayer& env,
                                 const ConfigLayer& flags) {
  ServeConfig config;
  apply_layer(config, file, "config file");
  apply_layer(config, env, "environment");
  apply_layer(config, flags, "command line");
  if (config.model_entries.empty()) {
    fail(ErrorCode::kInvalidArgument,
         "no model: set --model, AUTOGLM_MODEL or 'model' in the "
         "config file");
  }
  config.models = models::parse_model_specs(config.model_entries, config.served_model_name);
  config.engine.model_path = config.models.front().dir;
  // Names are checked here, so that a typo fails at start-up (and in --check-config).
  models::resolve_model_list("preload_models", config.preload_models, config.models);
  models::resolve_model_list("pinned_models", config.pinned_models, config.models);
  auth_required(config.auth, config.http.host);  // rejects a bad mode, or on without credentials
  if (config.require_signed_models && config.trusted_keys.empty()) {
    fail(ErrorCode::kInvalidArgument,
         "require_signed_models is on but trusted_keys names no public key");
  }
  return config;
}

ServeConfig reread_serve_config(const ConfigOrigin& origin) {
  const ConfigLayer file = origin.file.empty() ? ConfigLayer{} : read_config_file(origin.file);
  ServeConfig config = resolve_serve_config(file, origin.env, origin.flags);
  config.origin = origin;
  return config;
}

}  // namespace autoglm::server
