// Route access policy (RBAC): which routes need a credential and which roles may call them.
//   /health                                  public (liveness must work without secrets)
//   /metrics                                 metrics or admin
//   /v1/*, /tokenize, /detokenize            user or admin (the model allow-list is checked
//                                            by the OpenAI handlers, where the model is known)
//   /admin/*                                 admin
//   /ready, /version, /openapi.json, others  any authenticated caller (unknown paths too, so
//                                            route discovery needs a credential)
// Thread ownership: pure functions, any thread.
#pragma once

#include <string_view>

#include "security/principal.h"

namespace autoglm::server {

enum class RouteAccess { kPublic, kAuthenticated, kMetrics, kInference, kAdmin };

RouteAccess route_access(std::string_view path);
bool role_may_access(security::Role role, RouteAccess access);
std::string_view route_access_name(RouteAccess access);  // for audit details

}  // namespace autoglm::server
