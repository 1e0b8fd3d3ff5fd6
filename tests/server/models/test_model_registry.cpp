// ModelRegistry against real Engines on the tiny fixture models (CPU backend, the production
// loader with its warm-up): lazy load on first acquire, LRU eviction within a budget (leased
// and pinned models stay), unknown names, a model larger than the budget, a directory that
// fails to load, concurrent acquires during one load, unload under a lease, the admin actions.
// Budgets are set against explicit per-model byte figures so that the fits are exact.
// Thread ownership: the test thread, plus the registry's threads and engine threads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/circuit_breaker.h"
#include "server/models/model_loader.h"
#include "server/models/model_registry.h"

namespace autoglm::server::models {
namespace {

const std::string kFixtures = std::string(AUTOGLM_FIXTURES_DIR) + "/models/";
constexpr uint64_t kModelBytes = 100;  // each model's budgeted size in these tests

std::chrono::steady_clock::time_point far_deadline() {
  return std::chrono::steady_clock::now() + std::chrono::minutes(5);
}

EngineOptions cpu_options() {
  EngineOptions options;
  options.device = "cpu";
  options.kv_cache_bytes = 1 << 20;
  return options;
}

ModelConfigEntry entry(const std::string& name, const std::string& dir, bool pinned = false,
                       uint64_t bytes = kModelBytes) {
  ModelConfigEntry config;
  config.spec = {name, dir};
  config.pinned = pinned;
  config.estimated_bytes = bytes;
  return config;
}

// The three fixture models a, b, c.
std::vector<ModelConfigEntry> three_models(bool pin_a = false) {
  return {entry("a", kFixtures + "glm4-tiny", pin_a), entry("b", kFixtures + "llama-tiny"),
          entry("c", kFixtures + "qwen2-tiny")};
}

class Events {
 public:
  ModelEventSink sink() {
    return [this](const ModelEvent& event) {
      std::lock_guard lock(mutex_);
      events_.push_back(event.action + ":" + event.model + ":" + event.status);
    };
  }
  bool has(const std::string& line) const {
    std::lock_guard lock(mutex_);
    return std::find(events_.begin(), events_.end(), line) != events_.end();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> events_;
};

std::unique_ptr<ModelRegistry> make_registry(std::vector<ModelConfigEntry> entries, uint64_t budget,
                                             Events& events) {
  LoaderSettings loader;
  loader.engine = cpu_options();
  return std::make_unique<ModelRegistry>(std::move(entries), budget, make_engine_loader(loader),
                                         events.sink());
}

ModelError::Kind acquire_error(ModelRegistry& registry, const std::string& name,
                               std::chrono::steady_clock::time_point deadline = far_deadline()) {
  try {
    registry.acquire(name, deadline);
  } catch (const ModelError& error) {
    return error.kind();
  }
  ADD_FAILURE() << "acquire(" << name << ") succeeded";
  return ModelError::Kind::kShutdown;
}

void expect_generates(const ModelLease& lease) {
  const GenerationOutput out = lease.engine().generate(probe_request());
  EXPECT_EQ(out.usage.completion_tokens, 1);
}

TEST(ModelRegistry, LoadsLazilyOnFirstAcquire) {
  Events events;
  auto registry = make_registry(three_models(), 0, events);
  for (const ModelInfo& info : registry->list()) EXPECT_EQ(info.state, ModelState::kUnloaded);
  EXPECT_TRUE(registry->loaded_engines().empty());
  {
    ModelLease lease = registry->acquire("b", far_deadline());
    EXPECT_EQ(lease.name(), "b");
    expect_generates(lease);
    EXPECT_EQ(registry->info("b").leases, 1);
    EXPECT_GT(lease.loaded_at_unix(), 0);
  }
  const ModelInfo b = registry->info("b");
  EXPECT_EQ(b.state, ModelState::kReady);
  EXPECT_EQ(b.loads, 1u);
  EXPECT_EQ(b.leases, 0);
  EXPECT_GT(b.last_used_unix, 0);
  EXPECT_EQ(registry->info("a").state, ModelState::kUnloaded);
  EXPECT_EQ(registry->loaded_engines().size(), 1u);
  EXPECT_TRUE(events.has("model_load:b:ok"));
  // A second acquire reuses the loaded engine.
  registry->acquire("b", far_deadline());
  EXPECT_EQ(registry->info("b").loads, 1u);
  EXPECT_EQ(registry->default_model(), "a");
}

TEST(ModelRegistry, UnknownModelNeverLoadsAnything) {
  Events events;
  auto registry = make_registry(three_models(), 0, events);
  EXPECT_EQ(acquire_error(*registry, "nope"), ModelError::Kind::kUnknown);
  EXPECT_EQ(acquire_error(*registry, "../a"), ModelError::Kind::kUnknown);
  EXPECT_THROW(registry->info("nope"), ModelError);
  EXPECT_THROW(registry->unload("nope"), ModelError);
  EXPECT_TRUE(registry->loaded_engines().empty());
}

TEST(ModelRegistry, EvictsTheLeastRecentlyUsedIdleModel) {
  Events events;
  auto registry = make_registry(three_models(), 2 * kModelBytes + kModelBytes / 2, events);
  registry->acquire("a", far_deadline());
  registry->acquire("b", far_deadline());
  EXPECT_EQ(registry->memory_in_use(), 2 * kModelBytes);
  registry->acquire("c", far_deadline());  // a is the least recently used
  EXPECT_EQ(registry->info("a").state, ModelState::kUnloaded);
  EXPECT_EQ(registry->info("a").evictions, 1u);
  EXPECT_EQ(registry->info("b").state, ModelState::kReady);
  EXPECT_EQ(registry->info("c").state, ModelState::kReady);
  EXPECT_TRUE(events.has("model_evict:a:ok"));
  // Using b makes c the least recently used: loading a again evicts c.
  registry->acquire("b", far_deadline());
  registry->acquire("a", far_deadline());
  EXPECT_EQ(registry->info("c").state, ModelState::kUnloaded);
  EXPECT_EQ(registry->info("b").state, ModelState::kReady);
  EXPECT_EQ(registry->info("a").loads, 2u);
}

TEST(ModelRegistry, LeasedAndPinnedModelsAreNotEvicted) {
  Events events;
  auto registry = make_registry(three_models(/*pin_a=*/true), 2 * kModelBytes, events);
  registry->acquire("a", far_deadline());  // pinned, idle, least recently used
  {
    ModelLease b = registry->acquire("b", far_deadline());  // in use
    // Nothing may go: a is pinned, b is leased.
    EXPECT_EQ(acquire_error(*registry, "c"), ModelError::Kind::kNoRoom);
    EXPECT_EQ(registry->info("c").state, ModelState::kUnloaded);
    EXPECT_NE(registry->info("c").error.find("free after evicting every idle unpinned model"),
              std::string::npos);
    expect_generates(b);
  }
  ModelLease c = registry->acquire("c", far_deadline());  // now b is idle: it goes
  EXPECT_EQ(registry->info("a").state, ModelState::kReady);
  EXPECT_EQ(registry->info("b").state, ModelState::kUnloaded);
  expect_generates(c);
}

TEST(ModelRegistry, ModelLargerThanTheWholeBudgetFails) {
  Events events;
  std::vector<ModelConfigEntry> entries{entry("big", kFixtures + "glm4-tiny", false, 1000)};
  auto registry = make_registry(std::move(entries), 500, events);
  EXPECT_EQ(acquire_error(*registry, "big"), ModelError::Kind::kTooLarge);
  const ModelInfo info = registry->info("big");
  EXPECT_EQ(info.state, ModelState::kFailed);
  EXPECT_NE(info.error.find("more than the whole model memory budget"), std::string::npos);
  EXPECT_EQ(acquire_error(*registry, "big"), ModelError::Kind::kTooLarge);  // sticky
  EXPECT_TRUE(events.has("model_load:big:error"));
}

TEST(ModelRegistry, ADirectoryThatFailsToLoadLeavesTheModelFailed) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("autoglm-registry-broken-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << "{not json";
  Events events;
  std::vector<ModelConfigEntry> entries{entry("broken", dir.string()),
                                        entry("good", kFixtures + "glm4-tiny")};
  auto registry = make_registry(std::move(entries), 0, events);
  EXPECT_EQ(acquire_error(*registry, "broken"), ModelError::Kind::kLoadFailed);
  const ModelInfo info = registry->info("broken");
  EXPECT_EQ(info.state, ModelState::kFailed);
  EXPECT_FALSE(info.error.empty());
  EXPECT_EQ(acquire_error(*registry, "broken"), ModelError::Kind::kLoadFailed);  // no retry
  EXPECT_EQ(registry->info("broken").loads, 0u);
  EXPECT_TRUE(events.has("model_load:broken:error"));
  expect_generates(registry->acquire("good", far_deadline()));  // the others still load
  registry->reset_failed("broken");                             // an admin's retry
  EXPECT_THROW(registry->load("broken", far_deadline()), ModelError);
  std::filesystem::remove_all(dir);
}

TEST(ModelRegistry, ConcurrentAcquiresShareOneLoad) {
  Events events;
  auto registry = make_registry(three_models(), 0, events);
  constexpr int kThreads = 8;
  std::atomic<int> leased{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      ModelLease lease = registry->acquire("a", far_deadline());
      expect_generates(lease);
      ++leased;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(leased.load(), kThreads);
  EXPECT_EQ(registry->info("a").loads, 1u);
  EXPECT_EQ(registry->info("a").leases, 0);
}

TEST(ModelRegistry, AWaitPastItsDeadlineIsATimeoutAndTheLoadGoesOn) {
  Events events;
  auto registry = make_registry(three_models(), 0, events);
  // Already past: the clock thread answers at once, whatever the load's progress.
  std::promise<AcquireResult> answered;
  registry->acquire_async("b", std::chrono::steady_clock::now() - std::chrono::seconds(1),
                          [&](AcquireResult result) { answered.set_value(std::move(result)); });
  AcquireResult result = answered.get_future().get();
  if (result.error) {
    EXPECT_EQ(result.error->kind(), ModelError::Kind::kTimeout);
    EXPECT_TRUE(result.error->retryable());
  }  // else the load won the race: also correct
  expect_generates(registry->acquire("b", far_deadline()));
  EXPECT_EQ(registry->info("b").loads, 1u);
}

TEST(ModelRegistry, UnloadKeepsALeasedEngineAliveAndRefusesPinnedModels) {
  Events events;
  auto registry = make_registry(three_models(/*pin_a=*/true), 0, events);
  ModelLease lease = registry->acquire("b", far_deadline());
  const ModelInfo unloaded = registry->unload("b");
  EXPECT_EQ(unloaded.state, ModelState::kUnloading);  // the lease still holds the engine
  EXPECT_TRUE(events.has("model_unload:b:ok"));
  expect_generates(lease);                                    // and it still works
  ModelLease again = registry->acquire("b", far_deadline());  // a new load
  EXPECT_EQ(registry->info("b").loads, 2u);
  EXPECT_NE(&again.engine(), &lease.engine());
  registry->acquire("a", far_deadline());
  try {
    registry->unload("a");
    ADD_FAILURE() << "a pinned model was unloaded";
  } catch (const ModelError& error) {
    EXPECT_EQ(error.kind(), ModelError::Kind::kConflict);
  }
  registry->set_pinned("a", false);
  const ModelState after = registry->unload("a").state;  // the loader may not have freed it yet
  EXPECT_TRUE(after == ModelState::kUnloaded || after == ModelState::kUnloading);
  EXPECT_FALSE(registry->info("a").pinned);
}

}  // namespace
}  // namespace autoglm::server::models
