// See model_registry.h. Thread ownership: the mutex guards every entry's mutable fields, the
// queues and the waiters; callbacks, events, loads and engine destruction run without it.
#include "server/models/model_registry.h"

#include <utility>

#include "server/cache/response_cache.h"
#include "server/models/model_entry.h"

namespace autoglm::server::models {

std::string_view model_state_name(ModelState state) {
  switch (state) {
    case ModelState::kUnloaded:
      return "unloaded";
    case ModelState::kLoading:
      return "loading";
    case ModelState::kWarmingUp:
      return "warming_up";
    case ModelState::kReady:
      return "ready";
    case ModelState::kFailed:
      return "failed";
    case ModelState::kUnloading:
      return "unloading";
  }
  return "unknown";
}

// ---- ModelLease ----

ModelLease::ModelLease(ModelRegistry* registry, std::shared_ptr<ModelEntry> entry,
                       std::shared_ptr<const LoadedModel> loaded)
    : registry_(registry), entry_(std::move(entry)), loaded_(std::move(loaded)) {}

ModelLease::ModelLease(ModelLease&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)),
      entry_(std::move(other.entry_)),
      loaded_(std::move(other.loaded_)) {}

ModelLease::~ModelLease() {
  if (registry_ != nullptr && loaded_ != nullptr) registry_->release(*entry_, std::move(loaded_));
}

const std::string& ModelLease::name() const {
  return entry_->spec.name;
}

const ModelChatTemplate* ModelLease::chat_template() const {
  return loaded_->chat_template ? &*loaded_->chat_template : nullptr;
}

cache::ResponseCache* ModelLease::response_cache() const {
  return entry_->response_cache.get();
}

// ---- ModelRegistry: construction, lookups ----

ModelRegistry::ModelRegistry(std::vector<ModelConfigEntry> entries, uint64_t memory_budget,
                             LoadFunction load, ModelEventSink on_event)
    : budget_(memory_budget), load_(std::move(load)), on_event_(std::move(on_event)) {
  for (ModelConfigEntry& config : entries) {
    auto entry = std::make_shared<ModelEntry>();
    entry->spec = std::move(config.spec);
    entry->pinned = config.pinned;
    entry->bytes = config.estimated_bytes;
    entry->response_cache = std::move(config.response_cache);
    entries_.push_back(std::move(entry));
  }
  if (!entries_.empty()) default_model_ = entries_.front()->spec.name;
  loader_ = std::thread([this] { loader_loop(); });
  clock_ = std::thread([this] { clock_loop(); });
}

ModelRegistry::~ModelRegistry() {
  std::vector<Completion> completions;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (Waiter& waiter : waiters_) {
      AcquireResult result;
      result.error.emplace(ModelError::Kind::kShutdown, waiter.entry->spec.name,
                           "the server is shutting down");
      completions.emplace_back(std::move(waiter.done), std::move(result));
    }
    waiters_.clear();
  }
  loader_wake_.notify_all();
  clock_wake_.notify_all();
  for (auto& [done, result] : completions) done(std::move(result));
  loader_.join();
  clock_.join();
  destroy_engines_at_shutdown();
}

void ModelRegistry::destroy_engines_at_shutdown() {
  // As before several models existed, every engine goes now, whoever holds it: requests still
  // in one (the drain has ended or aborted them all) end with kCancelled, and their sessions
  // release their leases. A lease still held later keeps only an emptied LoadedModel. The
  // registry's threads have stopped and the I/O threads too, so nothing else reads `engine`.
  std::vector<std::shared_ptr<const LoadedModel>> models;
  {
    std::lock_guard lock(mutex_);
    for (auto& entry : entries_) {
      if (entry->loaded) {
        models.push_back(std::move(entry->loaded));
      } else if (auto retiring = entry->retiring.lock()) {
        models.push_back(std::move(retiring));
      }
    }
    models.insert(models.end(), graveyard_.begin(), graveyard_.end());
    graveyard_.clear();
  }
  std::vector<std::shared_ptr<Engine>> engines;
  for (const auto& model : models) {
    engines.push_back(std::move(const_cast<LoadedModel&>(*model).engine));  // not a const object
  }
  engines.clear();  // with the mutex released: cancelled requests release leases, which lock it
  models.clear();
  // A lease released after the destructor would reach freed memory: wait for the last ones.
  std::unique_lock lock(mutex_);
  released_.wait_for(lock, std::chrono::seconds(2), [this] { return outstanding_leases_ == 0; });
  graveyard_.clear();  // emptied LoadedModels only: no engine dies here
}

std::shared_ptr<ModelEntry> ModelRegistry::find(const std::string& name) const {
  for (const auto& entry : entries_) {
    if (entry->spec.name == name) return entry;
  }
  return nullptr;
}

bool ModelRegistry::contains(const std::string& name) const {
  return find(name) != nullptr;
}

std::vector<std::string> ModelRegistry::names() const {
  std::vector<std::string> names;
  for (const auto& entry : entries_) names.push_back(entry->spec.name);
  return names;
}

ModelInfo ModelRegistry::info_locked(const ModelEntry& entry) const {
  ModelInfo info;
  info.name = entry.spec.name;
  info.dir = entry.spec.dir;
  info.state = entry.state;
  if (entry.state == ModelState::kUnloaded && !entry.retiring.expired()) {
    info.state = ModelState::kUnloading;
  }
  info.pinned = entry.pinned;
  info.bytes = entry.bytes;
  info.leases = entry.leases;
  info.last_used_unix = entry.last_used_unix;
  info.loaded_at_unix = entry.loaded ? entry.loaded->loaded_at_unix : 0;
  info.error = entry.error;
  info.loads = entry.loads;
  info.evictions = entry.evictions;
  return info;
}

std::vector<ModelInfo> ModelRegistry::list() const {
  std::lock_guard lock(mutex_);
  std::vector<ModelInfo> infos;
  for (const auto& entry : entries_) infos.push_back(info_locked(*entry));
  return infos;
}

ModelInfo ModelRegistry::info(const std::string& name) const {
  const auto entry = find(name);
  if (!entry) {
    throw ModelError(ModelError::Kind::kUnknown, name, "model '" + name + "' does not exist");
  }
  std::lock_guard lock(mutex_);
  return info_locked(*entry);
}

std::vector<std::pair<std::string, std::shared_ptr<Engine>>> ModelRegistry::loaded_engines() const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::string, std::shared_ptr<Engine>>> engines;
  for (const auto& entry : entries_) {
    if (entry->loaded) engines.emplace_back(entry->spec.name, entry->loaded->engine);
  }
  return engines;
}

cache::ResponseCache* ModelRegistry::response_cache(const std::string& name) const {
  const std::shared_ptr<ModelEntry> entry = find(name);
  return entry ? entry->response_cache.get() : nullptr;
}

uint64_t ModelRegistry::bytes_in_use_locked() const {
  uint64_t bytes = 0;
  for (const auto& entry : entries_) {
    if (entry->loaded) bytes += entry->bytes;
    if (!entry->retiring.expired()) bytes += entry->retiring_bytes;
  }
  return bytes;
}

uint64_t ModelRegistry::memory_in_use() const {
  std::lock_guard lock(mutex_);
  return bytes_in_use_locked();
}

void ModelRegistry::emit(const ModelEvent& event) const {
  if (on_event_) on_event_(event);
}

}  // namespace autoglm::server::models
