// The HTTP router: a method + exact-path table mapping requests to handlers, with a route label
// per entry (used for metrics and access logs). Unknown paths answer 404 and known paths with
// another method answer 405 (with an Allow header), both in the OpenAI error shape.
// Thread ownership: any thread. Routes may be added while the server runs (the OpenAI routes are
// added once the model has loaded); a shared mutex guards the table, and a handler runs
// without the lock held.
#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "server/http_types.h"

namespace autoglm::server {

// What the router found for a method and path.
struct RouteMatch {
  std::shared_ptr<const Handler> handler;  // null when status is 404 or 405
  std::string route_label;                 // the matched route's label, or "unmatched"
  int status = 200;                        // 200 (found), 404 (no such path), 405 (wrong method)
  std::string allowed_methods;             // for 405: "GET, POST"
};

class Router {
 public:
  // Registers `handler` for exactly `method` and `path` (no query, no wildcards). `route_label`
  // names the route in metrics and logs (e.g. "/v1/chat/completions"). A duplicate method+path
  // throws Error(kInvalidArgument).
  void add(std::string method, std::string path, Handler handler, std::string route_label);

  RouteMatch match(std::string_view method, std::string_view path) const;

  // Runs the matched handler, or answers 404/405 itself. Returns the route label.
  std::string dispatch(const HttpRequest& request, std::shared_ptr<Responder> responder) const;

  // Every registered (method, path), in registration order (for docs and tests).
  std::vector<std::pair<std::string, std::string>> routes() const;

 private:
  struct Route {
    std::string method;
    std::string path;
    std::shared_ptr<const Handler> handler;
    std::string label;
  };
  mutable std::shared_mutex mutex_;
  std::vector<Route> routes_;
};

}  // namespace autoglm::server
