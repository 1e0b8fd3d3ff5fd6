// The audit record of each inference request (POST /v1/chat/completions, /v1/completions):
// exactly one record per exchange, written when the exchange ends (or when its session is
// dropped after the client left), with the caller, the model, the client, the outcome and the
// token counts, never prompt or output text. It wraps the exchange's Responder: the generation
// session already reports the model and token counts through Responder::annotate.
// Failure policy (security/audit_policy.h): open serves and logs the lost record; closed answers
// 503 up front while the audit log is failing, holds a whole answer until its record is
// written (503 instead when it cannot be), and ends a stream whose record cannot be written
// with an error event before [DONE] (its 200 and tokens are already out).
// Thread ownership: the wrapper is called from the I/O and engine threads (one mutex); the
// record may be written on either. Owner: the audit work (docs/SECURITY.md "Audit log").
#pragma once

#include <memory>
#include <string>

#include "security/audit_sink.h"
#include "server/http_types.h"

namespace autoglm::server::openai {

struct InferenceAudit {
  security::AuditSink* sink = nullptr;  // null: auditing off, the Responder is used as it is
  bool fail_closed = false;
  std::string served_model;  // the resource until the request's model is known
};

// Under a closed policy while the audit log is failing: answers 503, records the refusal, and
// returns true (the request must not run).
bool refuse_unaudited(const InferenceAudit& audit, const HttpRequest& request,
                      const std::shared_ptr<Responder>& responder);

// `responder` wrapped so that the exchange leaves its audit record.
std::shared_ptr<Responder> audited_responder(const InferenceAudit& audit,
                                             const HttpRequest& request,
                                             std::shared_ptr<Responder> responder);

}  // namespace autoglm::server::openai
