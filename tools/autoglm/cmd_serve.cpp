// `autoglm serve`: the OpenAI-compatible HTTP server. Every setting of the table in
// server/serve_config.h becomes a --flag (and an AUTOGLM_<KEY> env var and a key of the YAML
// --config file); precedence flags > env > file > defaults. Thread ownership: main thread.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "server/models/model_spec.h"
#include "server/openai/model_routing.h"
#include "server/serve.h"
#include "server/serve_config.h"
#include "server/server_state.h"

namespace autoglm::cli {
namespace {

struct ServeFlags {
  std::map<std::string, std::string> values;  // key -> value as typed
  std::map<std::string, CLI::Option*> options;
  std::vector<std::string> model_entries;  // --model, repeatable
  std::string config_path;
  bool check_only = false;  // --check-config: validate, print a summary, exit
};

// Adds the OpenAI routes over the model registry (run_server calls it before the preloads).
server::ApiRouteInstaller openai_installer() {
  return [](server::Router& router, const server::ServeConfig& config, server::ServerState& state) {
    server::openai::RoutingSettings settings;
    settings.ready = state.ready_flag();
    settings.audit_sink = state.audit_sink();  // inference audit (docs/SECURITY.md)
    settings.audit_fail_closed =
        config.audit_failure_policy == security::AuditFailurePolicy::kClosed;
    settings.quota = state.quota_gate();
    settings.load_wait = config.model_load_wait;
    server::openai::register_openai_routes(router, *state.models(), std::move(settings));
  };
}

// --check-config: what bin/autoglm-start runs before starting. The settings already resolved
// (values checked); here the model directory must exist and hold config.json and weights.
void check_model_dir(const std::string& model) {
  namespace fs = std::filesystem;
  std::error_code error;  // unreadable paths are configuration errors too, not exceptions
  if (!fs::is_directory(model, error)) {
    fail(ErrorCode::kNotFound, "model directory '" + model + "' does not exist" +
                                   (error ? " (" + error.message() + ")" : ""));
  }
  if (!fs::is_regular_file(fs::path(model) / "config.json", error)) {
    fail(ErrorCode::kNotFound, "model directory '" + model + "' has no config.json");
  }
  bool has_weights = false;
  for (fs::directory_iterator it(model, error), end; !error && it != end; it.increment(error)) {
    has_weights = has_weights || it->path().extension() == ".safetensors";
  }
  if (error) {
    fail(ErrorCode::kInvalidArgument,
         "cannot list model directory '" + model + "': " + error.message());
  }
  if (!has_weights) {
    fail(ErrorCode::kNotFound, "model directory '" + model + "' has no .safetensors weights");
  }
}

void check_config(const server::ServeConfig& config) {
  std::string names;
  for (const server::models::ModelSpec& spec : config.models) {
    check_model_dir(spec.dir);
    names += (names.empty() ? "" : ", ") + spec.name;
  }
  std::printf("config OK: model %s (%s), listening on %s:%u\n", config.engine.model_path.c_str(),
              names.c_str(), config.http.host.c_str(), static_cast<unsigned>(config.http.port));
}

}  // namespace

void register_serve(CLI::App& app, int* exit_code) {
  auto* sub = app.add_subcommand(
      "serve",
      "Serve the model over HTTP: OpenAI API (/v1/chat/completions, /v1/completions, "
      "/v1/models, /tokenize, /detokenize), /health, /ready, /metrics, /openapi.json. "
      "Settings: flags > AUTOGLM_<KEY> env vars > --config YAML file > defaults. "
      "SIGTERM/SIGINT drain and exit 0.");
  auto flags = std::make_shared<ServeFlags>();
  sub->add_option("--config", flags->config_path,
                  "YAML file of settings (keys as the flags, with underscores); env "
                  "AUTOGLM_CONFIG");
  sub->add_flag(
      "--check-config", flags->check_only,
      "Resolve the settings, check the model directory has config.json and weights, and exit");
  server::ServeConfig defaults;
  for (const server::ConfigSetting& setting : server::serve_config_settings()) {
    std::string help = setting.help;
    std::string shown = setting.show(defaults);
    if (!shown.empty()) help += " [default: " + shown + "]";
    help += " (env " + server::env_name(setting.key) + ")";
    if (setting.key == "model") {  // repeatable: --model a=DIR --model b=DIR
      flags->options[setting.key] =
          sub->add_option(server::flag_name(setting.key), flags->model_entries, help);
      continue;
    }
    flags->options[setting.key] =
        sub->add_option(server::flag_name(setting.key), flags->values[setting.key], help);
  }
  sub->callback([flags, exit_code] {
    server::ConfigLayer file_layer;
    std::string config_path = flags->config_path;
    if (config_path.empty()) {
      if (const char* from_env = std::getenv("AUTOGLM_CONFIG")) config_path = from_env;
    }
    if (!config_path.empty()) file_layer = server::read_config_file(config_path);
    server::ConfigLayer env_layer =
        server::config_from_env([](const char* name) { return std::getenv(name); });
    server::ConfigLayer flag_layer;
    for (const auto& [key, option] : flags->options) {
      if (option->count() == 0) continue;
      if (key == "model") {
        std::string joined;
        for (const std::string& entry : flags->model_entries) {
          joined += (joined.empty() ? "" : ",") + entry;
        }
        flag_layer.emplace_back(key, joined);
        continue;
      }
      flag_layer.emplace_back(key, flags->values[key]);
    }
    server::ServeConfig config = server::resolve_serve_config(file_layer, env_layer, flag_layer);
    config.origin = {config_path, env_layer, flag_layer};  // for hot reload
    if (flags->check_only) {
      check_config(config);
      return;
    }
    *exit_code = server::run_server(config, openai_installer());
  });
}

}  // namespace autoglm::cli
