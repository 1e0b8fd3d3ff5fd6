// See admin_routes.h. Thread ownership: any thread; the registry serializes reloads.
#include "server/admin_routes.h"

#include <spdlog/spdlog.h>

#include <string>
#include <utility>

#include "core/error.h"
#include "security/audit_sink.h"
#include "server/error_response.h"
#include "server/json_log.h"
#include "server/quota_gate.h"

namespace autoglm::server {
namespace {

constexpr std::string_view kReloadRoute = "/admin/reload";

spdlog::level::level_enum parse_log_level(const std::string& name) {
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  fail(ErrorCode::kInvalidArgument,
       "log_level must be debug, info, warn or error, not '" + name + "'");
}

// Sets the level of every registered logger (the JSON logger and the default one) in place:
// replacing the loggers would leave other threads' raw default-logger pointers dangling.
void apply_log_level(const std::string& name) {
  const spdlog::level::level_enum level = parse_log_level(name);
  spdlog::set_level(level);
}

bool record_admin_event(ServerState& state, const HttpRequest& request, std::string status,
                        int http_status, std::string detail) {
  security::AuditSink* sink = state.audit_sink();
  if (sink == nullptr) return true;
  security::AuditEvent event;
  event.action = "admin";
  event.user_id = request.principal != nullptr ? request.principal->id : "anonymous";
  event.resource = std::string(kReloadRoute);
  event.client_ip = request.client_ip;
  event.status = std::move(status);
  event.http_status = http_status;
  event.trace_id = request.trace_id;
  event.detail = std::move(detail);
  return sink->record(event);
}

std::string failed_components(const nlohmann::json& outcome) {
  std::string names;
  for (const auto& component : outcome["components"]) {
    if (component["ok"].get<bool>()) continue;
    if (!names.empty()) names += ", ";
    names += component["component"].get<std::string>();
  }
  return names;
}

void handle_reload(ServerState& state, const HttpRequest& request, Responder& responder) {
  if (!record_admin_event(state, request, "ok", 0, "reload requested")) {
    // Fail closed: an admin action that cannot be audited does not happen.
    responder.respond(error_response(503,
                                     "the audit log cannot record admin actions; "
                                     "the reload was not run"));
    return;
  }
  const nlohmann::json outcome = reload_and_log(state.reload_registry(), "POST /admin/reload");
  HttpResponse response;
  if (outcome["ok"].get<bool>()) {
    response.body = outcome.dump();
  } else {
    const std::string failed = failed_components(outcome);
    response = error_response(500, "reload failed for: " + failed, "", "reload_failed");
    nlohmann::json body = nlohmann::json::parse(response.body);
    body["components"] = outcome["components"];
    response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  const bool ok = outcome["ok"].get<bool>();
  record_admin_event(state, request, ok ? "ok" : "error", response.status,
                     ok ? "reloaded" : "reload failed: " + failed_components(outcome));
  responder.respond(std::move(response));
}

}  // namespace

void register_config_reloaders(ReloadRegistry& registry, QuotaGate* gate, ConfigOrigin origin) {
  // The log level first: once a client sees the new limits, the new level is in force too.
  registry.add("log_level", [origin] {
    const ServeConfig config = reread_serve_config(origin);
    apply_log_level(config.log_level);
    log_json(LogLevel::kInfo, "log level reloaded", {{"log_level", config.log_level}});
  });
  if (gate != nullptr) {
    registry.add("rate_limits", [gate, origin] {
      const ServeConfig config = reread_serve_config(origin);
      gate->set_defaults({config.rate_limit_rpm, config.rate_limit_tpm});
      log_json(
          LogLevel::kInfo, "rate limits reloaded",
          {{"rate_limit_rpm", config.rate_limit_rpm}, {"rate_limit_tpm", config.rate_limit_tpm}});
    });
  }
}

nlohmann::json reload_and_log(ReloadRegistry& registry, std::string_view trigger) {
  nlohmann::json components = nlohmann::json::array();
  bool all_ok = true;
  for (const ReloadOutcome& outcome : registry.reload_all()) {
    nlohmann::json entry{{"component", outcome.component}, {"ok", outcome.ok}};
    if (!outcome.ok) {
      all_ok = false;
      entry["error"] = outcome.error;
      log_json(LogLevel::kError, "reload failed",
               {{"trigger", std::string(trigger)},
                {"component", outcome.component},
                {"error", outcome.error}});
    }
    components.push_back(std::move(entry));
  }
  log_json(all_ok ? LogLevel::kInfo : LogLevel::kWarn, "reload",
           {{"trigger", std::string(trigger)}, {"ok", all_ok}, {"components", components}});
  return {{"ok", all_ok}, {"components", std::move(components)}};
}

void register_admin_routes(Router& router, ServerState& state) {
  router.add(
      "POST", std::string(kReloadRoute),
      [&state](const HttpRequest& request, std::shared_ptr<Responder> responder) {
        handle_reload(state, request, *responder);
      },
      std::string(kReloadRoute));
}

}  // namespace autoglm::server
