// Unit tests of the server's rate-limit gate and hot reload: which key and limits apply (a
// Principal's own quota, the server default, the client IP with auth off), the 429 in OpenAI's
// shape with Retry-After and x-ratelimit-* headers, the audit record of a refusal, token
// charging, the config reloaders and POST /admin/reload (200, 500 naming the component, fail
// closed when the audit log cannot record). Thread ownership: the test thread only.
#include <gtest/gtest.h>

#include <unistd.h>
#include <chrono>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/admin_routes.h"
#include "server/quota_gate.h"
#include "server/router.h"
#include "server/server_state.h"

namespace autoglm::server {
namespace {

using namespace std::chrono_literals;

// Keeps what a handler answered (the HTTP layer's own Responder needs a live connection).
class RecordingResponder : public Responder {
 public:
  void respond(HttpResponse r) override { responses.push_back(std::move(r)); }
  void start_stream(int status, HttpHeaders headers) override {
    stream_status = status;
    stream_headers = std::move(headers);
  }
  bool send_event(std::string) override { return true; }
  void end_stream() override {}
  void on_disconnect(std::function<void()>) override {}
  std::vector<HttpResponse> responses;
  int stream_status = 0;
  HttpHeaders stream_headers;
};

// An audit sink that keeps its events in memory; `accept` false plays a full disk.
class MemoryAuditSink : public security::AuditSink {
 public:
  bool record(const security::AuditEvent& event) noexcept override {
    events.push_back(event);
    return accept;
  }
  std::vector<security::AuditEvent> events;
  bool accept = true;
};

std::string header(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "<absent>";
}

HttpRequest anonymous_request(std::string ip = "10.0.0.1") {
  HttpRequest request;
  request.method = "POST";
  request.path = "/v1/completions";
  request.client_ip = std::move(ip);
  request.trace_id = "trace-1";
  return request;
}

HttpRequest request_from(std::string id, int64_t rpm, int64_t tpm) {
  HttpRequest request = anonymous_request();
  auto principal = std::make_shared<security::Principal>();
  principal->id = std::move(id);
  principal->kind = security::CredentialKind::kApiKey;
  principal->requests_per_minute = rpm;
  principal->tokens_per_minute = tpm;
  request.principal = std::move(principal);
  return request;
}

struct GateFixture {
  std::shared_ptr<std::chrono::steady_clock::time_point> now =
      std::make_shared<std::chrono::steady_clock::time_point>();
  MemoryAuditSink audit;
  QuotaGate gate;
  explicit GateFixture(security::RateLimits defaults)
      : gate(
            defaults, [this] { return &audit; }, {}, [now = now] { return *now; }) {}
};

TEST(QuotaGate, NoLimitsMeansNoHeadersAndNoKey) {
  GateFixture f({0, 0});
  QuotaGate::Admission admission = f.gate.admit(anonymous_request(), "/v1/completions");
  EXPECT_FALSE(admission.refusal);
  EXPECT_TRUE(admission.headers.empty());
  EXPECT_TRUE(admission.key.empty());
  EXPECT_EQ(f.gate.limiter().tracked_keys(), 0u);
}

TEST(QuotaGate, AuthOffLimitsPerClientIpAnd429HasOpenAiShape) {
  GateFixture f({2, 0});
  for (const char* remaining : {"1", "0"}) {
    QuotaGate::Admission ok = f.gate.admit(anonymous_request(), "/v1/completions");
    ASSERT_FALSE(ok.refusal);
    EXPECT_EQ(ok.key, "ip:10.0.0.1");
    EXPECT_EQ(header(ok.headers, "x-ratelimit-limit-requests"), "2");
    EXPECT_EQ(header(ok.headers, "x-ratelimit-remaining-requests"), remaining);
    EXPECT_EQ(header(ok.headers, "x-ratelimit-limit-tokens"), "<absent>");
  }
  QuotaGate::Admission refused = f.gate.admit(anonymous_request(), "/v1/completions");
  ASSERT_TRUE(refused.refusal);
  EXPECT_EQ(refused.refusal->status, 429);
  EXPECT_EQ(header(refused.refusal->headers, "retry-after"), "30");
  EXPECT_EQ(header(refused.refusal->headers, "x-ratelimit-reset-requests"), "1m0s");
  const auto body = nlohmann::json::parse(refused.refusal->body);
  EXPECT_EQ(body["error"]["type"], "requests");
  EXPECT_EQ(body["error"]["code"], "rate_limit_exceeded");
  EXPECT_TRUE(body["error"]["param"].is_null());
  ASSERT_EQ(f.audit.events.size(), 1u);
  EXPECT_EQ(f.audit.events[0].action, "rate_limited");
  EXPECT_EQ(f.audit.events[0].user_id, "anonymous");
  EXPECT_EQ(f.audit.events[0].resource, "/v1/completions");
  EXPECT_EQ(f.audit.events[0].client_ip, "10.0.0.1");
  EXPECT_EQ(f.audit.events[0].http_status, 429);
  EXPECT_EQ(f.audit.events[0].trace_id, "trace-1");
  // Another client IP has its own bucket.
  EXPECT_FALSE(f.gate.admit(anonymous_request("10.0.0.2"), "/v1/completions").refusal);
}

TEST(QuotaGate, PrincipalQuotaOverridesTheDefaultAndZeroFallsBackToIt) {
  GateFixture f({1, 0});
  HttpRequest generous = request_from("key-a", 5, 0);
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(f.gate.admit(generous, "r").refusal) << i;
  QuotaGate::Admission refused = f.gate.admit(generous, "r");
  ASSERT_TRUE(refused.refusal);
  EXPECT_EQ(f.audit.events.back().user_id, "key-a");
  HttpRequest defaulted = request_from("key-b", 0, 0);
  QuotaGate::Admission first = f.gate.admit(defaulted, "r");
  EXPECT_EQ(first.key, "principal:key-b");
  EXPECT_EQ(header(first.headers, "x-ratelimit-limit-requests"), "1");
  EXPECT_TRUE(f.gate.admit(defaulted, "r").refusal);
}

TEST(QuotaGate, TokensChargedAfterUsageRefuseLaterRequests) {
  GateFixture f({0, 100});
  auto first_responder = std::make_shared<RecordingResponder>();
  QuotaTicket ticket = admit_or_refuse(&f.gate, anonymous_request(), "r", first_responder);
  ASSERT_TRUE(ticket.admitted);
  ticket.responder->start_stream(200, {});
  EXPECT_EQ(header(first_responder->stream_headers, "x-ratelimit-limit-tokens"), "100");
  EXPECT_EQ(header(first_responder->stream_headers, "x-ratelimit-remaining-tokens"), "100");
  ticket.charge(160);  // prompt + completion: overdrawn by 60
  auto second = std::make_shared<RecordingResponder>();
  EXPECT_FALSE(admit_or_refuse(&f.gate, anonymous_request(), "r", second).admitted);
  ASSERT_EQ(second->responses.size(), 1u);
  EXPECT_EQ(second->responses[0].status, 429);
  EXPECT_EQ(nlohmann::json::parse(second->responses[0].body)["error"]["type"], "tokens");
  EXPECT_EQ(header(second->responses[0].headers, "retry-after"), "37");  // 61 tokens at 100/min
  *f.now += 37s;
  auto third = std::make_shared<RecordingResponder>();
  QuotaTicket later = admit_or_refuse(&f.gate, anonymous_request(), "r", third);
  ASSERT_TRUE(later.admitted);
  later.responder->respond(HttpResponse{});
  EXPECT_EQ(header(third->responses[0].headers, "x-ratelimit-remaining-tokens"), "1");
}

TEST(QuotaGate, NullGateOrNoLimitsPassesTheResponderThrough) {
  auto responder = std::make_shared<RecordingResponder>();
  QuotaTicket none = admit_or_refuse(nullptr, anonymous_request(), "r", responder);
  EXPECT_TRUE(none.admitted);
  EXPECT_EQ(none.responder, responder);
  EXPECT_FALSE(none.charge);
  GateFixture f({0, 0});
  QuotaTicket unlimited = admit_or_refuse(&f.gate, anonymous_request(), "r", responder);
  EXPECT_EQ(unlimited.responder, responder);
}

TEST(QuotaGate, NewDefaultsApplyToTheNextRequest) {
  GateFixture f({1, 0});
  ASSERT_FALSE(f.gate.admit(anonymous_request(), "r").refusal);
  ASSERT_TRUE(f.gate.admit(anonymous_request(), "r").refusal);
  f.gate.set_defaults({4, 0});
  QuotaGate::Admission raised = f.gate.admit(anonymous_request(), "r");
  ASSERT_FALSE(raised.refusal);
  EXPECT_EQ(header(raised.headers, "x-ratelimit-limit-requests"), "4");
  EXPECT_EQ(header(raised.headers, "x-ratelimit-remaining-requests"), "2");
}

// A config file the reloaders re-read; the model comes from the "flags" as in `autoglm serve`.
struct ReloadFixture {
  std::filesystem::path file = std::filesystem::temp_directory_path() /
                               ("autoglm_quota_test_" + std::to_string(::getpid()) + ".yaml");
  ConfigOrigin origin{file.string(), {}, {{"model", "/nonexistent-model"}}};
  ~ReloadFixture() { std::filesystem::remove(file); }
  void write(const std::string& text) { std::ofstream(file) << text; }
};

TEST(ConfigReloaders, ReReadTheFileAndKeepOldValuesOnError) {
  ReloadFixture r;
  QuotaGate gate({1, 0}, [] { return nullptr; });
  ReloadRegistry registry;
  register_config_reloaders(registry, &gate, r.origin);
  r.write("rate_limit_rpm: 7\nrate_limit_tpm: 900\nlog_level: info\n");
  for (const ReloadOutcome& outcome : registry.reload_all()) EXPECT_TRUE(outcome.ok);
  EXPECT_EQ(gate.defaults().requests_per_minute, 7);
  EXPECT_EQ(gate.defaults().tokens_per_minute, 900);
  r.write("rate_limit_rpm: -3\nlog_level: loud\n");
  std::vector<ReloadOutcome> failed = registry.reload_all();
  ASSERT_EQ(failed.size(), 2u);
  for (const ReloadOutcome& outcome : failed) {
    EXPECT_FALSE(outcome.ok) << outcome.component;
    EXPECT_NE(outcome.error.find("rate_limit_rpm"), std::string::npos) << outcome.error;
  }
  EXPECT_EQ(gate.defaults().requests_per_minute, 7);
  r.write("log_level: loud\n");
  failed = registry.reload_all();
  EXPECT_EQ(failed[0].component, "log_level");
  EXPECT_FALSE(failed[0].ok);
  EXPECT_NE(failed[0].error.find("loud"), std::string::npos);
  EXPECT_TRUE(failed[1].ok);  // the rate limits read the same file fine (defaults: 0)
  EXPECT_EQ(gate.defaults().requests_per_minute, 0);
}

TEST(AdminReload, AnswersOutcomesAndAuditsBeforeAndAfter) {
  ServerState state;
  auto audit = std::make_shared<MemoryAuditSink>();
  state.set_audit_sink(audit);
  int runs = 0;
  bool fail = false;
  state.reload_registry().add("api_keys", [&] {
    ++runs;
    if (fail) throw std::runtime_error("keys file /etc/keys.yaml: bad hash");
  });
  Router router;
  register_admin_routes(router, state);
  HttpRequest request = anonymous_request();
  request.path = "/admin/reload";
  auto ok = std::make_shared<RecordingResponder>();
  router.dispatch(request, ok);
  ASSERT_EQ(ok->responses.size(), 1u);
  EXPECT_EQ(ok->responses[0].status, 200);
  const auto body = nlohmann::json::parse(ok->responses[0].body);
  EXPECT_TRUE(body["ok"].get<bool>());
  EXPECT_EQ(body["components"][0]["component"], "api_keys");
  ASSERT_EQ(audit->events.size(), 2u);
  EXPECT_EQ(audit->events[0].action, "admin");
  EXPECT_EQ(audit->events[0].resource, "/admin/reload");
  EXPECT_EQ(audit->events[1].http_status, 200);

  fail = true;
  auto failed = std::make_shared<RecordingResponder>();
  router.dispatch(request, failed);
  ASSERT_EQ(failed->responses.size(), 1u);
  EXPECT_EQ(failed->responses[0].status, 500);
  const auto error = nlohmann::json::parse(failed->responses[0].body);
  EXPECT_NE(error["error"]["message"].get<std::string>().find("api_keys"), std::string::npos);
  EXPECT_FALSE(error["components"][0]["ok"].get<bool>());
  EXPECT_EQ(audit->events.back().status, "error");

  audit->accept = false;  // the audit disk is full: the admin action must not happen
  const int runs_before = runs;
  auto closed = std::make_shared<RecordingResponder>();
  router.dispatch(request, closed);
  ASSERT_EQ(closed->responses.size(), 1u);
  EXPECT_EQ(closed->responses[0].status, 503);
  EXPECT_EQ(runs, runs_before);
}

}  // namespace
}  // namespace autoglm::server
