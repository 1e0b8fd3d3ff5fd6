// The audit failure policy: what a caller does when its audit record cannot be written.
// Admin routes always fail closed (the action is audited before it runs, and does not run
// unaudited); inference follows the `audit_failure_policy` setting.
// Thread ownership: pure functions, any thread.
#pragma once

#include <string_view>

#include "security/audit_sink.h"

namespace autoglm::security {

enum class AuditFailurePolicy {
  kOpen,    // serve anyway; the lost record is logged as an error
  kClosed,  // answer 503 when the request's record cannot be written
};

// "open" | "closed"; throws Error(kInvalidArgument) otherwise.
AuditFailurePolicy parse_audit_failure_policy(std::string_view text);
std::string_view audit_failure_policy_name(AuditFailurePolicy policy);

// Records an admin action before it runs. True when it may run: auditing is off (null sink) or
// the record was written. False: answer 503 and do not run the action.
bool audit_admin_action(AuditSink* sink, const AuditEvent& event) noexcept;

}  // namespace autoglm::security
