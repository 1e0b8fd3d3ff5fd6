// Liveness decisions (ProgressMonitor) and the admission 503s by phase.
// Thread ownership: test thread.
#include "server/server_state.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace autoglm::server {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

TEST(ProgressMonitor, StallWithPendingWorkIsUnhealthy) {
  ProgressMonitor monitor(std::chrono::milliseconds(5000));
  Clock::time_point t0{};
  monitor.observe(t0, true, 10, 2);
  monitor.observe(t0 + seconds(3), true, 10, 2);
  EXPECT_TRUE(monitor.healthy());
  monitor.observe(t0 + seconds(6), true, 10, 2);
  EXPECT_FALSE(monitor.healthy());
  EXPECT_NE(monitor.reason().find("2 requests pending"), std::string::npos) << monitor.reason();
  monitor.observe(t0 + seconds(7), true, 11, 2);  // a step completed: healthy again
  EXPECT_TRUE(monitor.healthy());
}

TEST(ProgressMonitor, IdleEngineIsHealthyAndDeadThreadIsNot) {
  ProgressMonitor monitor(std::chrono::milliseconds(1000));
  Clock::time_point t0{};
  monitor.observe(t0, true, 5, 0);
  monitor.observe(t0 + seconds(100), true, 5, 0);
  EXPECT_TRUE(monitor.healthy());
  monitor.observe(t0 + seconds(101), false, 5, 0);
  EXPECT_FALSE(monitor.healthy());
  EXPECT_NE(monitor.reason().find("engine thread"), std::string::npos);
}

TEST(Admission, OnlyOperationalRoutesPassUntilReady) {
  ServerState state;
  auto refusal = admission_refusal(state, "/v1/completions");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->status, 503);
  EXPECT_EQ(nlohmann::json::parse(refusal->body)["error"]["type"], "service_unavailable_error");
  EXPECT_FALSE(admission_refusal(state, "/ready").has_value());
  EXPECT_FALSE(admission_refusal(state, "/health").has_value());
  EXPECT_FALSE(*state.ready_flag());
  state.set_phase(ServerPhase::kReady);
  EXPECT_TRUE(*state.ready_flag());
  EXPECT_FALSE(admission_refusal(state, "/v1/completions").has_value());
  state.set_phase(ServerPhase::kDraining);
  refusal = admission_refusal(state, "/v1/completions");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->body.find("shutting down"), std::string::npos);
  state.set_failure("bad model");
  EXPECT_EQ(state.phase(), ServerPhase::kFailed);
  EXPECT_EQ(state.failure(), "bad model");
}

}  // namespace
}  // namespace autoglm::server
