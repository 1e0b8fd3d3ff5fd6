// The server side of per-caller rate limits: which key and limits apply to a request (the
// Principal's own quotas, else the server defaults `rate_limit_rpm` / `rate_limit_tpm`; with
// auth off, the defaults per client IP), the 429 in OpenAI's shape with Retry-After, the
// x-ratelimit-* headers every inference answer carries, the audit record of a refusal, and the
// charge of prompt + completion tokens once a generation's usage is known.
// Thread ownership: safe from any thread (the limiter is sharded; defaults are swapped under a
// mutex by the reload thread). One QuotaGate per server, owned by ServerState's owner.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "security/audit_sink.h"
#include "security/rate_limiter.h"
#include "server/http_types.h"

namespace autoglm::server {

class QuotaGate {
 public:
  // `audit` is asked for the sink at each refusal (it may be set after construction, or null).
  QuotaGate(security::RateLimits defaults, std::function<security::AuditSink*()> audit,
            security::RateLimiter::Options options = {}, security::RateLimiter::Clock clock = {});

  // The server-wide defaults (0: unlimited), swapped by the rate_limits reloader.
  void set_defaults(security::RateLimits defaults);
  security::RateLimits defaults() const;

  struct Admission {
    std::optional<HttpResponse> refusal;  // the 429 to answer instead, headers included
    HttpHeaders headers;                  // x-ratelimit-* for the answer; empty: no limits apply
    std::string key;                      // the bucket key; empty: no limits apply
  };

  // Checks the token bucket (not taken from) and takes one request. `route` names the
  // resource in the audit record of a refusal.
  Admission admit(const HttpRequest& request, std::string_view route);

  // Charges what a finished (or failed, or abandoned) generation used to the key's tokens.
  void charge(const std::string& key, int64_t tokens);

  security::RateLimiter& limiter() { return limiter_; }

 private:
  security::RateLimits limits_for(const HttpRequest& request) const;
  void audit_refusal(const HttpRequest& request, std::string_view route, std::string_view what);

  mutable std::mutex defaults_mutex_;
  security::RateLimits defaults_;
  std::function<security::AuditSink*()> audit_;
  security::RateLimiter limiter_;
};

// What an inference handler gets from the gate: either the request was refused (already
// answered with the 429) or a responder that adds the x-ratelimit-* headers to the answer and
// a charge function for the usage (a no-op when no limits apply).
struct QuotaTicket {
  bool admitted = true;
  std::shared_ptr<Responder> responder;
  std::function<void(int64_t tokens)> charge;
};

// `gate` may be null (no rate limiting): the ticket then admits and passes `responder` through.
QuotaTicket admit_or_refuse(QuotaGate* gate, const HttpRequest& request, std::string_view route,
                            std::shared_ptr<Responder> responder);

}  // namespace autoglm::server
