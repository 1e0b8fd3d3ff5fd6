// Hot reload (issue 8): POST /admin/reload and the reloaders of the serve settings that can
// change without a restart (the rate-limit defaults and the log level, re-read from the
// --config file). SIGHUP runs the same reload (serve.cpp). Admin-only when auth is on: the auth
// middleware guards /admin/* generically; this file only registers the route.
// Thread ownership: the route runs on an I/O thread; reloads run one at a time (the registry's
// mutex) on the thread that asked.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "server/router.h"
#include "server/serve_config.h"
#include "server/server_state.h"

namespace autoglm::server {

class QuotaGate;

// Adds "rate_limits" (when `gate` is not null) and "log_level" to `registry`. Each re-reads
// the config file of `origin` (flags and env still win over it) and applies only its own
// setting; a reloader that fails leaves its setting unchanged.
void register_config_reloaders(ReloadRegistry& registry, QuotaGate* gate, ConfigOrigin origin);

// Runs every reloader, logs each outcome (`trigger`: "SIGHUP" or "POST /admin/reload") and
// returns {"ok": bool, "components": [{"component","ok","error"?}]}.
nlohmann::json reload_and_log(ReloadRegistry& registry, std::string_view trigger);

// POST /admin/reload: 200 with the outcomes when every component reloaded; 500 in the OpenAI
// error shape naming the failing components otherwise (the outcomes ride along). Audited
// (action "admin", resource the route) before acting: if the audit sink cannot record it, the
// reload does not happen (503, fail closed), and again with the outcome. `state` must outlive
// the router.
void register_admin_routes(Router& router, ServerState& state);

}  // namespace autoglm::server
