// See quota_gate.h. The header names and the 429's type/code follow OpenAI's API: type
// "requests" or "tokens", code "rate_limit_exceeded", x-ratelimit-reset-* as "1m30s".
// Thread ownership: any thread.
#include "server/quota_gate.h"

#include <cmath>
#include <utility>

#include "server/error_response.h"

namespace autoglm::server {
namespace {

// Adds the x-ratelimit-* headers to whatever the handler answers (whole or streamed).
class HeaderAddingResponder : public ForwardingResponder {
 public:
  HeaderAddingResponder(std::shared_ptr<Responder> inner, HttpHeaders headers)
      : ForwardingResponder(std::move(inner)), headers_(std::move(headers)) {}

  void respond(HttpResponse response) override {
    response.headers.insert(response.headers.end(), headers_.begin(), headers_.end());
    inner().respond(std::move(response));
  }
  void start_stream(int status, HttpHeaders headers) override {
    headers.insert(headers.end(), headers_.begin(), headers_.end());
    inner().start_stream(status, std::move(headers));
  }

 private:
  const HttpHeaders headers_;
};

void add_bucket_headers(HttpHeaders& headers, std::string_view kind,
                        const security::RateDecision& decision) {
  const std::string suffix(kind);
  headers.emplace_back("x-ratelimit-limit-" + suffix, std::to_string(decision.limit));
  headers.emplace_back("x-ratelimit-remaining-" + suffix, std::to_string(decision.remaining));
  headers.emplace_back("x-ratelimit-reset-" + suffix,
                       security::format_reset_duration(decision.reset_seconds));
}

HttpResponse rate_limit_response(std::string_view kind, std::string_view unit,
                                 const security::RateDecision& decision, HttpHeaders headers) {
  const auto retry_after =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(decision.retry_after_seconds)));
  const std::string message = "Rate limit reached for " + std::string(kind) + " per min (" +
                              std::string(unit) + "): Limit " + std::to_string(decision.limit) +
                              ", Remaining " + std::to_string(decision.remaining) +
                              ". Please try again in " +
                              security::format_reset_duration(decision.retry_after_seconds) + ".";
  HttpResponse response = error_response(429, message, "", "rate_limit_exceeded", kind);
  response.headers = std::move(headers);
  response.headers.emplace_back("retry-after", std::to_string(retry_after));
  return response;
}

}  // namespace

QuotaGate::QuotaGate(security::RateLimits defaults, std::function<security::AuditSink*()> audit,
                     security::RateLimiter::Options options, security::RateLimiter::Clock clock)
    : defaults_(defaults), audit_(std::move(audit)), limiter_(options, std::move(clock)) {}

void QuotaGate::set_defaults(security::RateLimits defaults) {
  std::lock_guard lock(defaults_mutex_);
  defaults_ = defaults;
}

security::RateLimits QuotaGate::defaults() const {
  std::lock_guard lock(defaults_mutex_);
  return defaults_;
}

security::RateLimits QuotaGate::limits_for(const HttpRequest& request) const {
  security::RateLimits limits = defaults();
  if (request.principal != nullptr) {
    if (request.principal->requests_per_minute > 0) {
      limits.requests_per_minute = request.principal->requests_per_minute;
    }
    if (request.principal->tokens_per_minute > 0) {
      limits.tokens_per_minute = request.principal->tokens_per_minute;
    }
  }
  return limits;
}

QuotaGate::Admission QuotaGate::admit(const HttpRequest& request, std::string_view route) {
  Admission admission;
  const security::RateLimits limits = limits_for(request);
  if (limits.requests_per_minute <= 0 && limits.tokens_per_minute <= 0) return admission;
  // Prefixed so that a key id can never share a bucket with an IP address.
  admission.key = request.principal != nullptr ? "principal:" + request.principal->id
                                               : "ip:" + request.client_ip;
  // Tokens first, taking nothing: a caller refused for tokens keeps its request budget.
  const security::RateDecision tokens = limiter_.check_tokens(admission.key, limits);
  const security::RateDecision requests = tokens.allowed
                                              ? limiter_.try_acquire_request(admission.key, limits)
                                              : limiter_.peek_request(admission.key, limits);
  if (limits.requests_per_minute > 0) add_bucket_headers(admission.headers, "requests", requests);
  if (limits.tokens_per_minute > 0) add_bucket_headers(admission.headers, "tokens", tokens);
  if (!tokens.allowed) {
    admission.key.clear();
    audit_refusal(request, route, "tokens per minute");
    admission.refusal = rate_limit_response("tokens", "TPM", tokens, admission.headers);
  } else if (!requests.allowed) {
    admission.key.clear();
    audit_refusal(request, route, "requests per minute");
    admission.refusal = rate_limit_response("requests", "RPM", requests, admission.headers);
  }
  return admission;
}

void QuotaGate::charge(const std::string& key, int64_t tokens) {
  if (!key.empty()) limiter_.charge_tokens(key, tokens);
}

void QuotaGate::audit_refusal(const HttpRequest& request, std::string_view route,
                              std::string_view what) {
  security::AuditSink* sink = audit_ ? audit_() : nullptr;
  if (sink == nullptr) return;
  security::AuditEvent event;
  event.action = "rate_limited";
  event.user_id = request.principal != nullptr ? request.principal->id : "anonymous";
  event.resource = std::string(route);
  event.client_ip = request.client_ip;
  event.status = "denied";
  event.http_status = 429;
  event.trace_id = request.trace_id;
  event.detail = std::string(what);
  // A refusal that cannot be audited is still a refusal: nothing more to do here.
  (void)sink->record(event);
}

QuotaTicket admit_or_refuse(QuotaGate* gate, const HttpRequest& request, std::string_view route,
                            std::shared_ptr<Responder> responder) {
  QuotaTicket ticket;
  if (gate == nullptr) {
    ticket.responder = std::move(responder);
    return ticket;
  }
  QuotaGate::Admission admission = gate->admit(request, route);
  if (admission.refusal) {
    responder->annotate("rate_limited", std::string("true"));
    responder->respond(std::move(*admission.refusal));
    ticket.admitted = false;
    return ticket;
  }
  if (admission.key.empty()) {
    ticket.responder = std::move(responder);
    return ticket;
  }
  ticket.responder =
      std::make_shared<HeaderAddingResponder>(std::move(responder), std::move(admission.headers));
  ticket.charge = [gate, key = std::move(admission.key)](int64_t tokens) {
    gate->charge(key, tokens);
  };
  return ticket;
}

}  // namespace autoglm::server
