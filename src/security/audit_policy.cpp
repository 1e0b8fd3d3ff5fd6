// See audit_policy.h. Thread ownership: any thread.
#include "security/audit_policy.h"

#include <string>

#include "core/error.h"

namespace autoglm::security {

AuditFailurePolicy parse_audit_failure_policy(std::string_view text) {
  if (text == "open") return AuditFailurePolicy::kOpen;
  if (text == "closed") return AuditFailurePolicy::kClosed;
  fail(ErrorCode::kInvalidArgument,
       "audit_failure_policy must be open or closed, not '" + std::string(text) + "'");
}

std::string_view audit_failure_policy_name(AuditFailurePolicy policy) {
  return policy == AuditFailurePolicy::kOpen ? "open" : "closed";
}

bool audit_admin_action(AuditSink* sink, const AuditEvent& event) noexcept {
  if (sink == nullptr) return true;
  return sink->record(event);
}

}  // namespace autoglm::security
