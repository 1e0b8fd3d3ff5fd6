// The model admin API (admin role only: the auth middleware guards /admin/*; serve.cpp audits
// every /admin/ request before it runs and refuses it when the audit log cannot record it):
//   GET  /admin/models                      every model: name, dir, state, pinned, bytes,
//                                           leases, last_used, error, plus the budget
//   POST /admin/models/{name}/load          loads it (retrying a failed load) and waits for
//                                           ready up to model_load_wait: 200 with the entry
//   POST /admin/models/{name}/unload        200 with the entry; 409 when pinned or loading
//   POST /admin/models/{name}/pin | /unpin  200 with the entry
// Errors are in the OpenAI shape (models/model_http.h). Each outcome is audited too (action
// "admin", the route as resource, the status, the error code as detail: never a file path).
// Thread ownership: handlers run on I/O threads and never block: a load's answer comes from
// the registry's loader or clock thread. `registry` and `state` must outlive the router's use.
#pragma once

#include <chrono>

#include <nlohmann/json.hpp>

#include "server/models/model_registry.h"
#include "server/router.h"
#include "server/server_state.h"

namespace autoglm::server {

void register_model_admin_routes(Router& router, models::ModelRegistry& registry,
                                 ServerState& state, std::chrono::milliseconds load_wait);

// An entry as the admin API shows it.
nlohmann::json model_info_json(const models::ModelInfo& info);

}  // namespace autoglm::server
