// The engine circuit breaker's state machine on an injected clock, the feed from engine
// failure counters, inference admission and /metrics lines while it is open, and (in builds
// with AUTOGLM_FAULT_INJECTION) the fault-injecting backend against the real engine on the
// tiny fixture model: NaN logits fail only their request with a clear error and count as
// failed steps.
// Thread ownership: the test thread (and, for the Engine tests, the engine thread it starts).
#include "server/circuit_breaker.h"

#include <gtest/gtest.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "server/server_state.h"
#ifdef AUTOGLM_FAULT_INJECTION
#include "backend/fault_injection.h"
#include "core/error.h"
#endif

namespace autoglm::server {
namespace {

using std::chrono::milliseconds;

struct FakeClock {
  CircuitBreaker::TimePoint now{};
  CircuitBreaker::Clock clock() {
    return [this] { return now; };
  }
};

CircuitBreakerOptions options(int32_t threshold = 3) {
  CircuitBreakerOptions o;
  o.failure_threshold = threshold;
  o.failure_window = milliseconds(10'000);
  o.cooldown = milliseconds(1000);
  o.max_cooldown = milliseconds(3000);
  o.probe_timeout = milliseconds(5000);
  return o;
}

TEST(CircuitBreaker, OpensAfterThresholdConsecutiveFailuresAndASuccessResetsTheStreak) {
  FakeClock t;
  CircuitBreaker breaker(options(3), t.clock());
  breaker.record_failure("a");
  breaker.record_failure("b");
  breaker.record_success();  // streak over
  breaker.record_failure("c");
  breaker.record_failure("d");
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kClosed);
  EXPECT_EQ(breaker.snapshot().consecutive_failures, 2);
  EXPECT_FALSE(breaker.refusal().has_value());
  breaker.record_failure("backend exploded");
  const CircuitBreaker::Snapshot s = breaker.snapshot();
  EXPECT_EQ(s.state, BreakerState::kOpen);
  EXPECT_EQ(s.openings, 1u);
  EXPECT_NE(s.reason.find("backend exploded"), std::string::npos) << s.reason;
  ASSERT_TRUE(breaker.refusal().has_value());
  EXPECT_EQ(breaker.refusal()->retry_after, milliseconds(1000));
}

TEST(CircuitBreaker, FailuresFurtherApartThanTheWindowDoNotAddUp) {
  FakeClock t;
  CircuitBreaker breaker(options(2), t.clock());
  breaker.record_failure("x");
  t.now += milliseconds(10'001);
  breaker.record_failure("y");
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kClosed);
  t.now += milliseconds(9'999);
  breaker.record_failure("z");
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kOpen);
}

TEST(CircuitBreaker, HalfOpensAfterTheCooldownWithOneProbeWhoseSuccessCloses) {
  FakeClock t;
  CircuitBreaker breaker(options(1), t.clock());
  breaker.record_failure("x");
  t.now += milliseconds(400);
  EXPECT_EQ(breaker.refusal()->retry_after, milliseconds(600));  // the cool-down left
  EXPECT_FALSE(breaker.begin_probe().has_value());
  breaker.record_success();  // open ignores outcomes: only the probe closes it
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kOpen);
  t.now += milliseconds(600);
  const std::optional<uint64_t> ticket = breaker.begin_probe();
  ASSERT_TRUE(ticket.has_value());
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kHalfOpen);
  EXPECT_FALSE(breaker.begin_probe().has_value());  // exactly one probe
  ASSERT_TRUE(breaker.refusal().has_value());       // inference still waits for it
  breaker.record_success();                         // not the probe: stays half-open
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kHalfOpen);
  breaker.end_probe(*ticket, true, "");
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kClosed);
  EXPECT_FALSE(breaker.refusal().has_value());
  EXPECT_EQ(breaker.snapshot().openings, 1u);
}

TEST(CircuitBreaker, FailedProbesReopenWithTheCooldownDoubledUpToTheCap) {
  FakeClock t;
  CircuitBreaker breaker(options(1), t.clock());
  breaker.record_failure("x");
  for (milliseconds expected : {milliseconds(2000), milliseconds(3000), milliseconds(3000)}) {
    t.now += breaker.snapshot().cooldown;
    const std::optional<uint64_t> ticket = breaker.begin_probe();
    ASSERT_TRUE(ticket.has_value());
    breaker.end_probe(*ticket, false, "still broken");
    const CircuitBreaker::Snapshot s = breaker.snapshot();
    EXPECT_EQ(s.state, BreakerState::kOpen);
    EXPECT_EQ(s.cooldown, expected);
    EXPECT_NE(s.reason.find("probe failed: still broken"), std::string::npos) << s.reason;
  }
  EXPECT_EQ(breaker.snapshot().openings, 4u);
  t.now += milliseconds(3000);
  breaker.end_probe(*breaker.begin_probe(), true, "");  // success resets the cool-down
  EXPECT_EQ(breaker.snapshot().cooldown, milliseconds(1000));
}

TEST(CircuitBreaker, StaleAndOverdueProbesAndATripWhileHalfOpen) {
  FakeClock t;
  CircuitBreaker breaker(options(1), t.clock());
  breaker.record_failure("x");
  t.now += milliseconds(1000);
  const uint64_t first = *breaker.begin_probe();
  t.now += milliseconds(5001);  // past probe_timeout: the probe has failed
  EXPECT_FALSE(breaker.begin_probe().has_value());
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kOpen);
  breaker.end_probe(first, true, "");  // its late answer changes nothing
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kOpen);
  t.now += breaker.snapshot().cooldown;
  ASSERT_TRUE(breaker.begin_probe().has_value());
  breaker.trip("watchdog: no engine step");
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kOpen);
  EXPECT_EQ(breaker.snapshot().reason, "watchdog: no engine step");
}

TEST(CircuitBreaker, TripOpensAtOnceAndThresholdZeroTurnsItOff) {
  FakeClock t;
  CircuitBreaker breaker(options(5), t.clock());
  breaker.trip("watchdog: stalled");
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kOpen);
  CircuitBreaker off(options(0), t.clock());
  for (int i = 0; i < 100; ++i) off.record_failure("x");
  off.trip("watchdog: stalled");
  EXPECT_EQ(off.snapshot().state, BreakerState::kClosed);
}

TEST(EngineFailureFeed, TurnsCountersIntoTheBreakersStreak) {
  FakeClock t;
  CircuitBreaker breaker(options(3), t.clock());
  EngineFailureFeed feed;
  EngineMetricsSnapshot m;
  m.failed_steps = 2;
  m.consecutive_failed_steps = 2;
  m.last_step_failure = "boom";
  feed.observe(m, breaker);
  EXPECT_EQ(breaker.snapshot().consecutive_failures, 2);
  feed.observe(m, breaker);  // nothing new
  EXPECT_EQ(breaker.snapshot().consecutive_failures, 2);
  m.failed_steps = 3;  // a good step, then one failure: the streak is 1, not 3
  m.consecutive_failed_steps = 1;
  feed.observe(m, breaker);
  EXPECT_EQ(breaker.snapshot().consecutive_failures, 1);
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kClosed);
  m.consecutive_failed_steps = 0;  // a good step only
  feed.observe(m, breaker);
  EXPECT_EQ(breaker.snapshot().consecutive_failures, 0);
  m.failed_steps = 6;
  m.consecutive_failed_steps = 3;
  feed.observe(m, breaker);
  EXPECT_EQ(breaker.snapshot().state, BreakerState::kOpen);
  EXPECT_NE(breaker.snapshot().reason.find("boom"), std::string::npos);
}

TEST(BreakerAdmission, OpenBreakerRefusesInferenceOnlyWithRetryAfterTheCooldownLeft) {
  FakeClock t;
  ServerState state;
  CircuitBreakerOptions o = options(1);
  o.cooldown = milliseconds(2500);
  state.set_breaker_options(o, t.clock());
  state.set_phase(ServerPhase::kReady);
  EXPECT_FALSE(admission_refusal(state, "/v1/completions").has_value());
  state.breaker().trip("watchdog: stalled");
  t.now += milliseconds(400);
  for (const char* route : {"/v1/completions", "/v1/chat/completions"}) {
    const std::optional<HttpResponse> refusal = admission_refusal(state, route);
    ASSERT_TRUE(refusal.has_value()) << route;
    EXPECT_EQ(refusal->status, 503);
    EXPECT_EQ(nlohmann::json::parse(refusal->body)["error"]["type"], "service_unavailable_error");
    ASSERT_EQ(refusal->headers.size(), 1u);
    EXPECT_EQ(refusal->headers[0].first, "retry-after");
    EXPECT_EQ(refusal->headers[0].second, "3");  // 2.1 s left, rounded up
  }
  for (const char* route : {"/v1/models", "/tokenize", "/ready", "/health", "/metrics"}) {
    EXPECT_FALSE(admission_refusal(state, route).has_value()) << route;
  }
}

TEST(BreakerMetrics, StateGaugeOpeningsAndEngineFailureCounters) {
  FakeClock t;
  CircuitBreaker breaker(options(1), t.clock());
  breaker.record_failure("x");
  t.now += milliseconds(1000);
  ASSERT_TRUE(breaker.begin_probe().has_value());
  EngineMetricsSnapshot engine;
  engine.failed_steps = 7;
  engine.nonfinite_logits_requests = 2;
  const std::string text = render_breaker_metrics(breaker.snapshot(), &engine, "model_name=\"m\"");
  EXPECT_NE(text.find("# TYPE autoglm:circuit_breaker_state gauge\n"
                      "autoglm:circuit_breaker_state{model_name=\"m\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("autoglm:circuit_breaker_openings_total{model_name=\"m\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("autoglm:engine_failed_steps_total{model_name=\"m\"} 7\n"),
            std::string::npos);
  EXPECT_NE(text.find("autoglm:nonfinite_logits_requests_total{model_name=\"m\"} 2\n"),
            std::string::npos);
}

#ifdef AUTOGLM_FAULT_INJECTION

const std::string kModelDir = std::string(AUTOGLM_FIXTURES_DIR) + "/models/glm4-tiny";

EngineOptions faulty_engine(std::string fault) {
  EngineOptions o;
  o.model_path = kModelDir;
  o.device = "cpu";
  o.num_kv_blocks = 32;
  o.kv_block_size = 4;
  o.check_invariants = true;
  o.fault_injection = std::move(fault);
  // The faults count backend steps: one step per request step, not one submitted ahead for a
  // request that the first fault has already ended (tests/runtime covers faults with overlap).
  o.overlap_scheduling = false;
  return o;
}

GenerationRequest short_request() {
  GenerationRequest request = probe_request();
  request.prompt_ids = {1, 2, 3};
  request.stop.max_tokens = 3;
  return request;
}

// The metrics once the engine thread has published the step that ended the `finished`-th
// request (a request's last delta reaches the caller just before that publication).
std::shared_ptr<const EngineMetricsSnapshot> metrics_after(const Engine& engine,
                                                           uint64_t finished) {
  std::shared_ptr<const EngineMetricsSnapshot> m = engine.metrics();
  for (int i = 0; i < 10'000 && m->requests_finished < finished; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    m = engine.metrics();
  }
  return m;
}

TEST(FaultInjection, SpecsParseAndBadOnesAreRejected) {
  EXPECT_EQ(parse_fault_spec("throw:5").count, 5);
  EXPECT_EQ(parse_fault_spec("nan").kind, FaultSpec::Kind::kNan);
  EXPECT_EQ(parse_fault_spec("hang").kind, FaultSpec::Kind::kHang);
  for (const char* bad :
       {"", "throw:", "throw:0", "throw:x", "nan:-1", "hang:2", "explode:1", "throw:99999999999"}) {
    EXPECT_THROW(parse_fault_spec(bad), Error) << bad;
  }
}

TEST(FaultInjection, NanLogitsFailOnlyThatRequestClearlyAndCountAsFailedSteps) {
  Engine engine(faulty_engine("nan:2"));
  for (int i = 0; i < 2; ++i) {
    const GenerationOutput out = engine.generate(short_request());
    EXPECT_EQ(out.finish, FinishCause::kError);
    EXPECT_NE(out.error.find("non-finite logits"), std::string::npos) << out.error;
    EXPECT_TRUE(out.token_ids.empty());
  }
  std::shared_ptr<const EngineMetricsSnapshot> m = metrics_after(engine, 2);
  EXPECT_EQ(m->nonfinite_logits_requests, 2u);
  EXPECT_EQ(m->failed_steps, 2u);
  EXPECT_EQ(m->consecutive_failed_steps, 2);
  const GenerationOutput ok = engine.generate(short_request());  // the fault is spent
  EXPECT_EQ(ok.finish, FinishCause::kLength);
  EXPECT_EQ(ok.token_ids.size(), 3u);
  m = metrics_after(engine, 3);
  EXPECT_EQ(m->consecutive_failed_steps, 0);
  EXPECT_EQ(m->failed_steps, 2u);
  EXPECT_EQ(m->kv_blocks_used, 0);  // the failed requests gave their blocks back
}

TEST(FaultInjection, ThrownStepsFailTheirRequestsAndAHangIsReleasedOnShutdown) {
  {
    Engine engine(faulty_engine("throw:1"));
    const GenerationOutput out = engine.generate(short_request());
    EXPECT_EQ(out.finish, FinishCause::kError);
    EXPECT_NE(out.error.find("injected backend fault"), std::string::npos) << out.error;
    EXPECT_EQ(metrics_after(engine, 1)->failed_steps, 1u);
    EXPECT_EQ(engine.generate(short_request()).finish, FinishCause::kLength);
  }
  Engine hung(faulty_engine("hang"));
  RequestStream stream = hung.submit(short_request());
  (void)stream;  // never answered until ~Engine releases the hang (this must not deadlock)
}

#endif  // AUTOGLM_FAULT_INJECTION

}  // namespace
}  // namespace autoglm::server
