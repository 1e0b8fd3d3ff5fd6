// The route table and its 404/405 answers. Thread ownership: see router.h (read-only after setup).
#include "server/router.h"

#include "core/error.h"
#include "server/error_response.h"

namespace autoglm::server {

void Router::add(std::string method, std::string path, Handler handler, std::string route_label) {
  std::unique_lock lock(mutex_);
  for (const Route& route : routes_) {
    if (route.method == method && route.path == path) {
      fail(ErrorCode::kInvalidArgument, "route registered twice: " + method + " " + path);
    }
  }
  routes_.push_back({std::move(method), std::move(path),
                     std::make_shared<const Handler>(std::move(handler)), std::move(route_label)});
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  std::shared_lock lock(mutex_);
  RouteMatch result;
  bool path_known = false;
  for (const Route& route : routes_) {
    if (route.path != path) continue;
    if (route.method == method) {
      result.handler = route.handler;
      result.route_label = route.label;
      result.status = 200;
      return result;
    }
    path_known = true;
    result.route_label = route.label;
    if (!result.allowed_methods.empty()) result.allowed_methods += ", ";
    result.allowed_methods += route.method;
  }
  result.status = path_known ? 405 : 404;
  if (!path_known) result.route_label = "unmatched";
  return result;
}

std::string Router::dispatch(const HttpRequest& request,
                             std::shared_ptr<Responder> responder) const {
  RouteMatch found = match(request.method, request.path);
  if (found.handler != nullptr) {
    (*found.handler)(request, std::move(responder));
  } else if (found.status == 405) {
    HttpResponse response =
        error_response(405, "method " + request.method + " is not allowed on " + request.path +
                                " (allowed: " + found.allowed_methods + ")");
    response.headers.emplace_back("allow", found.allowed_methods);
    responder->respond(std::move(response));
  } else {
    responder->respond(error_response(404, "no route for " + request.path, {}, "not_found"));
  }
  return found.route_label;
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
  std::shared_lock lock(mutex_);
  std::vector<std::pair<std::string, std::string>> result;
  for (const Route& route : routes_) result.emplace_back(route.method, route.path);
  return result;
}

}  // namespace autoglm::server
