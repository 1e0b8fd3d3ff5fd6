// See auth_policy.h. Thread ownership: pure functions, any thread.
#include "server/auth_policy.h"

namespace autoglm::server {
namespace {

bool under(std::string_view path, std::string_view prefix) {
  // "/admin" itself and "/admin/..." but not "/administrator".
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

}  // namespace

RouteAccess route_access(std::string_view path) {
  if (path == "/health") return RouteAccess::kPublic;
  if (path == "/metrics") return RouteAccess::kMetrics;
  if (under(path, "/admin")) return RouteAccess::kAdmin;
  if (under(path, "/v1") || path == "/tokenize" || path == "/detokenize") {
    return RouteAccess::kInference;
  }
  return RouteAccess::kAuthenticated;
}

bool role_may_access(security::Role role, RouteAccess access) {
  using security::Role;
  switch (access) {
    case RouteAccess::kPublic:
    case RouteAccess::kAuthenticated:
      return true;
    case RouteAccess::kMetrics:
      return role == Role::kMetrics || role == Role::kAdmin;
    case RouteAccess::kInference:
      return role == Role::kUser || role == Role::kAdmin;
    case RouteAccess::kAdmin:
      return role == Role::kAdmin;
  }
  return false;
}

std::string_view route_access_name(RouteAccess access) {
  switch (access) {
    case RouteAccess::kPublic:
      return "public";
    case RouteAccess::kAuthenticated:
      return "authenticated";
    case RouteAccess::kMetrics:
      return "metrics";
    case RouteAccess::kInference:
      return "inference";
    case RouteAccess::kAdmin:
      return "admin";
  }
  return "authenticated";
}

}  // namespace autoglm::server
