// `autoglm serve` as a library function: starts the HTTP server (operational routes at once),
// loads the model, adds the API routes, warms up, serves until SIGTERM/SIGINT, then drains:
// readiness 503 at once, new requests 503, in-flight requests get --drain-timeout to finish,
// then a final error event / 503, and the function returns 0.
// Thread ownership: call from the main thread; it blocks until shutdown.
#pragma once

#include <functional>
#include <string>

#include "server/serve_config.h"

namespace autoglm::server {

class Router;
class ServerState;

// Adds the model's API routes once the engine exists (the OpenAI routes). May be empty.
using ApiRouteInstaller =
    std::function<void(Router& router, const ServeConfig& config, ServerState& state)>;

// The model's name in the API: served_model_name, else the model directory's name.
std::string served_model_name(const ServeConfig& config);

// Returns the process exit status: 0 after a clean drain, 1 when the model failed to load.
int run_server(const ServeConfig& config, const ApiRouteInstaller& install_api_routes = {});

}  // namespace autoglm::server
