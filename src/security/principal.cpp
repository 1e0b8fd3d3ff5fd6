// Role names for logs, audit records and errors.
// Thread ownership: pure functions, any thread.
#include "security/principal.h"

namespace autoglm::security {

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kUser:
      return "user";
    case Role::kMetrics:
      return "metrics";
  }
  return "user";
}

}  // namespace autoglm::security
