// The seam between everything that must leave an audit record (auth failures, inference
// requests, admin actions, model loads, integrity failures) and the tamper-evident audit log
// that writes them. Producers hold an AuditSink*; a null sink means auditing is off.
// Thread ownership: implementations must be safe to call from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace autoglm::security {

// One security-relevant event. Metadata only: never prompt or output text, never a secret
// (no API key, no token, no password), never a file path beyond the model's name.
struct AuditEvent {
  std::string action;          // "inference", "auth_failure", "forbidden", "rate_limited", "admin",
                               // "model_load", "model_unload", "integrity_failure", "config_reload"
  std::string user_id;         // API key id or JWT subject; "anonymous" when unknown
  std::string resource;        // the model name or the route
  std::string client_ip;       // empty for events without a client (a model load at start-up)
  std::string status;          // "ok", "denied", "error" (with http_status when there was one)
  int http_status = 0;         // 0 when not an HTTP exchange
  int64_t prompt_tokens = -1;  // -1: not applicable
  int64_t completion_tokens = -1;  // -1: not applicable
  std::string trace_id;
  std::string detail;  // a short reason ("expired token", "bad signature"), no user text
};

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Appends the event. Returns false when the record could not be written durably (disk full,
  // I/O error); the caller then applies the failure policy (admin routes fail closed).
  virtual bool record(const AuditEvent& event) noexcept = 0;
  // False while the sink is known to be failing (its last write failed), so that a caller that
  // cannot take its answer back later (a stream, whose 200 goes out first) can refuse up front.
  virtual bool healthy() const noexcept { return true; }
};

}  // namespace autoglm::security
