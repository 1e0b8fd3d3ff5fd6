// ModelRegistry: every model one server is configured with, and which of them are loaded. Each
// entry has a state (unloaded, loading, warming_up, ready, failed, unloading), its engine once
// loaded, its chat template and response cache, a pin, a last-used time for the LRU, its bytes
// (an estimate, see model_spec.h) and a lease count (requests using it).
//   - acquire / acquire_async: a ModelLease (RAII) on a ready model, loading it first when it
//     is unloaded (lazily, on the loader thread, one load at a time), bounded by a deadline.
//   - Memory: before a load, least recently used models that are ready, unpinned and not
//     leased are evicted until the new one fits the budget; if it still does not fit, the
//     load fails (kNoRoom, retryable; kTooLarge when it alone exceeds the budget).
//   - Unload: the entry turns unloaded at once; its engine is destroyed after its last lease.
// Engines are only ever destroyed on the loader thread (or by the registry's destructor), never
// on an engine thread whose request released the last lease.
// Thread ownership: every public member is safe from any thread (one mutex). Two threads of its
// own: the loader (loads, evictions, engine destruction) and the waiter clock (deadlines).
// acquire_async's callback runs on the caller's thread (model ready, or an immediate error),
// the loader thread (load finished) or the clock thread (deadline passed); it must not block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "autoglm/engine.h"
#include "server/models/model_spec.h"
#include "tokenizer/model_chat_template.h"

namespace autoglm::server::cache {
class ResponseCache;
}

namespace autoglm::server::models {

enum class ModelState { kUnloaded, kLoading, kWarmingUp, kReady, kFailed, kUnloading };
std::string_view model_state_name(ModelState state);  // "unloaded", "loading", ...

// What one load produced. Immutable once the load returns.
struct LoadedModel {
  std::shared_ptr<Engine> engine;
  std::optional<ModelChatTemplate> chat_template;
  int64_t loaded_at_unix = 0;  // set by the registry when the load succeeds
};

// Why a model cannot be had. `retryable` errors carry the advice to come back later.
class ModelError : public std::runtime_error {
 public:
  enum class Kind {
    kUnknown,     // no such model configured
    kLoadFailed,  // its load failed (the state stays failed until an admin load retries)
    kTimeout,     // not ready before the deadline (the load goes on)
    kNoRoom,      // does not fit beside the models in use or pinned
    kTooLarge,    // larger than the whole budget
    kConflict,    // an admin action that the state forbids (unload a pinned or loading model)
    kShutdown,    // the registry is shutting down
  };
  ModelError(Kind kind, std::string model, std::string message)
      : std::runtime_error(std::move(message)), kind_(kind), model_(std::move(model)) {}
  Kind kind() const { return kind_; }
  const std::string& model() const { return model_; }
  bool retryable() const { return kind_ == Kind::kTimeout || kind_ == Kind::kNoRoom; }

 private:
  Kind kind_;
  std::string model_;
};

class ModelRegistry;
struct ModelEntry;

// A request's hold on a ready model: the engine stays alive and the model is not evicted while
// the lease lives. Releasing it (destruction) updates the model's last-used time.
class ModelLease {
 public:
  ModelLease(ModelLease&& other) noexcept;
  ModelLease& operator=(ModelLease&&) = delete;
  ModelLease(const ModelLease&) = delete;
  ~ModelLease();

  const std::string& name() const;
  Engine& engine() const { return *loaded_->engine; }
  const ModelChatTemplate* chat_template() const;
  cache::ResponseCache* response_cache() const;
  int64_t loaded_at_unix() const { return loaded_->loaded_at_unix; }  // /v1/models "created"

 private:
  friend class ModelRegistry;
  ModelLease(ModelRegistry* registry, std::shared_ptr<ModelEntry> entry,
             std::shared_ptr<const LoadedModel> loaded);
  ModelRegistry* registry_;
  std::shared_ptr<ModelEntry> entry_;
  std::shared_ptr<const LoadedModel> loaded_;
};

// One configured model as the registry starts it.
struct ModelConfigEntry {
  ModelSpec spec;
  bool pinned = false;
  uint64_t estimated_bytes = 0;
  std::shared_ptr<cache::ResponseCache> response_cache;  // null: the cache is off
};

// What GET /admin/models and /v1/models show of an entry.
struct ModelInfo {
  std::string name;
  std::string dir;
  ModelState state = ModelState::kUnloaded;
  bool pinned = false;
  uint64_t bytes = 0;
  int64_t leases = 0;
  int64_t last_used_unix = 0;  // 0: never used
  int64_t loaded_at_unix = 0;  // 0: not loaded
  std::string error;           // the last load's failure, else empty
  uint64_t loads = 0;          // successful loads
  uint64_t evictions = 0;
};

// A load: builds the model's engine (and checks, warms it up), calling `warming_up` once the
// engine exists and the warm-up starts. Throws on failure; runs on the loader thread.
using LoadFunction =
    std::function<LoadedModel(const ModelSpec& spec, const std::function<void()>& warming_up)>;

// A registry event for the log and the audit log: action model_load, model_unload or
// model_evict; status ok or error; detail the reason (never file contents).
struct ModelEvent {
  std::string action;
  std::string model;
  std::string status;
  std::string detail;    // for the log: may name files
  double seconds = 0;    // model_load: how long it took
  std::string category;  // for the audit log: a failure's category only (no paths)
};
using ModelEventSink = std::function<void(const ModelEvent& event)>;

struct AcquireResult {
  std::optional<ModelLease> lease;
  std::optional<ModelError> error;
};
using AcquireCallback = std::function<void(AcquireResult result)>;

class ModelRegistry {
 public:
  using Clock = std::chrono::steady_clock;

  // `memory_budget` in bytes (already resolved; 0 is no limit). The first entry is the default
  // model (requests without a "model" field).
  ModelRegistry(std::vector<ModelConfigEntry> entries, uint64_t memory_budget, LoadFunction load,
                ModelEventSink on_event);
  // Fails waiters (kShutdown), finishes a running load, then destroys every engine even if a
  // lease still holds it (requests left end with kCancelled, as a drained server's did), and
  // waits at most 2 s for those leases to be released.
  ~ModelRegistry();
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // Blocks until the model is ready (loading it if needed) or the deadline; throws ModelError.
  ModelLease acquire(const std::string& name, Clock::time_point deadline);
  // The same without blocking: `done` gets the lease or the error exactly once (see top).
  void acquire_async(const std::string& name, Clock::time_point deadline, AcquireCallback done);

  // Admin actions (throw ModelError): load waits for ready like acquire; unload refuses a
  // pinned or loading model (kConflict); unloading an unloaded or failed model resets it.
  ModelInfo load(const std::string& name, Clock::time_point deadline);
  ModelInfo unload(const std::string& name);
  ModelInfo set_pinned(const std::string& name, bool pinned);
  // A failed model back to unloaded, so that the next acquire loads it again (admin retry).
  void reset_failed(const std::string& name);

  // Queues loads without waiting (preload at start-up).
  void start_loads(const std::vector<std::string>& names);
  // Unloads every model (after the drain) with a model_unload event each.
  void unload_all(const std::string& reason);

  bool contains(const std::string& name) const;
  const std::string& default_model() const { return default_model_; }
  std::vector<std::string> names() const;
  std::vector<ModelInfo> list() const;
  ModelInfo info(const std::string& name) const;  // throws ModelError kUnknown
  // The engines of the models loaded now, with their names (watchdog, breaker, /metrics).
  std::vector<std::pair<std::string, std::shared_ptr<Engine>>> loaded_engines() const;
  cache::ResponseCache* response_cache(const std::string& name) const;  // null: off or unknown
  uint64_t memory_budget() const { return budget_; }
  uint64_t memory_in_use() const;  // loaded models' bytes, those draining included

 private:
  friend class ModelLease;
  struct Waiter {
    std::shared_ptr<ModelEntry> entry;
    Clock::time_point deadline;
    AcquireCallback done;
  };
  using Completion = std::pair<AcquireCallback, AcquireResult>;

  std::shared_ptr<ModelEntry> find(const std::string& name) const;  // null: unknown
  ModelInfo info_locked(const ModelEntry& entry) const;
  void queue_load_locked(const std::shared_ptr<ModelEntry>& entry);
  ModelLease lease_locked(const std::shared_ptr<ModelEntry>& entry);
  void release(ModelEntry& entry, std::shared_ptr<const LoadedModel> loaded);
  uint64_t bytes_in_use_locked() const;
  // Evicts least recently used idle unpinned models until `entry` fits; false (and no eviction)
  // when even evicting all of them would not do. `free_at_best`: the bytes free after that.
  bool make_room_locked(const ModelEntry& entry, std::vector<std::string>& evicted,
                        std::vector<std::shared_ptr<const LoadedModel>>& dead,
                        uint64_t& free_at_best);
  std::shared_ptr<const LoadedModel> retire_locked(ModelEntry& entry);
  std::vector<Completion> settle_waiters_locked(const ModelEntry& entry,
                                                const std::optional<ModelError>& error);
  void loader_loop();
  void run_load(const std::shared_ptr<ModelEntry>& entry);
  void clock_loop();
  void emit(const ModelEvent& event) const;
  void destroy_engines_at_shutdown();

  const uint64_t budget_;
  const LoadFunction load_;
  const ModelEventSink on_event_;
  std::string default_model_;
  std::vector<std::shared_ptr<ModelEntry>> entries_;  // fixed after construction

  mutable std::mutex mutex_;
  std::condition_variable loader_wake_;
  std::condition_variable clock_wake_;
  std::deque<std::shared_ptr<ModelEntry>> load_queue_;
  std::vector<std::shared_ptr<const LoadedModel>> graveyard_;  // destroyed on the loader thread
  std::vector<Waiter> waiters_;
  int64_t outstanding_leases_ = 0;  // every lease alive, on retired engines too
  std::condition_variable released_;
  bool stopping_ = false;
  std::thread loader_;
  std::thread clock_;
};

}  // namespace autoglm::server::models
