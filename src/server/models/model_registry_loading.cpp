// ModelRegistry's acquisitions, admin actions, the loader thread (eviction, load, engine
// destruction) and the waiter clock (see model_registry.h).
// Thread ownership: any thread for the public members; loader_loop and clock_loop run on the
// registry's own threads. Callbacks and events always run with the mutex released.
#include <algorithm>
#include <future>

#include "core/error.h"

#include "server/models/model_entry.h"
#include "server/models/model_registry.h"

namespace autoglm::server::models {
namespace {

std::string bytes_text(uint64_t bytes) {
  return std::to_string(bytes) + " bytes";
}

ModelError unknown_model(const std::string& name) {
  return ModelError(ModelError::Kind::kUnknown, name, "model '" + name + "' does not exist");
}

ModelError failure_of(const ModelEntry& entry) {
  const std::string& name = entry.spec.name;
  if (entry.failure_kind == ModelError::Kind::kTooLarge) {
    return ModelError(entry.failure_kind, name, "cannot load model '" + name + "': " + entry.error);
  }
  return ModelError(entry.failure_kind, name,
                    "model '" + name + "' failed to load: " + entry.error);
}

}  // namespace

// ---- acquisitions ----

ModelLease ModelRegistry::lease_locked(const std::shared_ptr<ModelEntry>& entry) {
  ++outstanding_leases_;
  ++entry->leases;
  touch(*entry);
  return ModelLease(this, entry, entry->loaded);
}

void ModelRegistry::release(ModelEntry& entry, std::shared_ptr<const LoadedModel> loaded) {
  std::lock_guard lock(mutex_);
  --outstanding_leases_;
  released_.notify_all();
  if (entry.loaded == loaded) {
    --entry.leases;
    touch(entry);
    loaded.reset();  // the entry holds it too: never the last reference here
    return;
  }
  // An unloaded model's engine: its last reference must not die on this (maybe engine) thread.
  graveyard_.push_back(std::move(loaded));
  loader_wake_.notify_one();
}

void ModelRegistry::queue_load_locked(const std::shared_ptr<ModelEntry>& entry) {
  entry->state = ModelState::kLoading;
  load_queue_.push_back(entry);
  loader_wake_.notify_one();
}

void ModelRegistry::acquire_async(const std::string& name, Clock::time_point deadline,
                                  AcquireCallback done) {
  AcquireResult result;
  const std::shared_ptr<ModelEntry> entry = find(name);
  if (!entry) {
    result.error = unknown_model(name);
  } else {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      result.error.emplace(ModelError::Kind::kShutdown, name, "the server is shutting down");
    } else if (entry->state == ModelState::kReady) {
      result.lease.emplace(lease_locked(entry));
    } else if (entry->state == ModelState::kFailed) {
      result.error = failure_of(*entry);
    } else {
      if (entry->state == ModelState::kUnloaded) queue_load_locked(entry);
      waiters_.push_back(Waiter{entry, deadline, std::move(done)});
      clock_wake_.notify_one();
      return;
    }
  }
  done(std::move(result));
}

ModelLease ModelRegistry::acquire(const std::string& name, Clock::time_point deadline) {
  std::promise<AcquireResult> promise;
  std::future<AcquireResult> future = promise.get_future();
  acquire_async(name, deadline,
                [&promise](AcquireResult result) { promise.set_value(std::move(result)); });
  AcquireResult result = future.get();
  if (result.error) throw *result.error;
  return std::move(*result.lease);
}

// ---- admin actions ----

void ModelRegistry::reset_failed(const std::string& name) {
  const std::shared_ptr<ModelEntry> entry = find(name);
  if (!entry) throw unknown_model(name);
  std::lock_guard lock(mutex_);
  if (entry->state == ModelState::kFailed) entry->state = ModelState::kUnloaded;
}

ModelInfo ModelRegistry::load(const std::string& name, Clock::time_point deadline) {
  reset_failed(name);
  const std::shared_ptr<ModelEntry> entry = find(name);
  ModelLease lease = acquire(name, deadline);
  std::lock_guard lock(mutex_);
  ModelInfo info = info_locked(*entry);
  info.leases -= 1;  // without the admin's own lease, released on return
  return info;
}

std::shared_ptr<const LoadedModel> ModelRegistry::retire_locked(ModelEntry& entry) {
  std::shared_ptr<const LoadedModel> loaded = std::move(entry.loaded);
  entry.state = ModelState::kUnloaded;
  entry.leases = 0;  // leases still out count against the retiring engine, not a new one
  entry.retiring = loaded;
  entry.retiring_bytes = entry.bytes;
  return loaded;
}

ModelInfo ModelRegistry::unload(const std::string& name) {
  const std::shared_ptr<ModelEntry> entry = find(name);
  if (!entry) throw unknown_model(name);
  bool unloaded = false;
  ModelInfo info;
  {
    std::lock_guard lock(mutex_);
    if (entry->pinned) {
      throw ModelError(ModelError::Kind::kConflict, name,
                       "model '" + name + "' is pinned; unpin it before unloading it");
    }
    if (entry->state == ModelState::kLoading || entry->state == ModelState::kWarmingUp) {
      throw ModelError(ModelError::Kind::kConflict, name,
                       "model '" + name + "' is loading; unload it once it is ready");
    }
    if (entry->state == ModelState::kReady) {
      graveyard_.push_back(retire_locked(*entry));
      loader_wake_.notify_one();
      unloaded = true;
    } else {
      entry->state = ModelState::kUnloaded;  // a failed model may be loaded again
    }
    entry->error.clear();
    info = info_locked(*entry);
  }
  if (unloaded) emit({"model_unload", name, "ok", "admin", 0, "admin"});
  return info;
}

ModelInfo ModelRegistry::set_pinned(const std::string& name, bool pinned) {
  const std::shared_ptr<ModelEntry> entry = find(name);
  if (!entry) throw unknown_model(name);
  std::lock_guard lock(mutex_);
  entry->pinned = pinned;
  return info_locked(*entry);
}

void ModelRegistry::start_loads(const std::vector<std::string>& names) {
  std::lock_guard lock(mutex_);
  for (const std::string& name : names) {
    const std::shared_ptr<ModelEntry> entry = find(name);
    if (entry && entry->state == ModelState::kUnloaded) queue_load_locked(entry);
  }
}

void ModelRegistry::unload_all(const std::string& reason) {
  std::vector<std::string> unloaded;
  {
    std::lock_guard lock(mutex_);
    for (const auto& entry : entries_) {
      if (entry->state != ModelState::kReady) continue;
      graveyard_.push_back(retire_locked(*entry));
      unloaded.push_back(entry->spec.name);
    }
    loader_wake_.notify_one();
  }
  for (const std::string& name : unloaded) emit({"model_unload", name, "ok", reason, 0, reason});
}

// ---- the loader thread ----

bool ModelRegistry::make_room_locked(const ModelEntry& entry, std::vector<std::string>& evicted,
                                     std::vector<std::shared_ptr<const LoadedModel>>& dead,
                                     uint64_t& free_at_best) {
  if (budget_ == 0) return true;
  // Evictable: ready, unpinned, not in use, not the one loading.
  std::vector<ModelEntry*> candidates;
  uint64_t in_use = bytes_in_use_locked();
  uint64_t freeable = 0;
  for (const auto& candidate : entries_) {
    if (candidate.get() == &entry || candidate->state != ModelState::kReady || candidate->pinned ||
        candidate->leases > 0) {
      continue;
    }
    candidates.push_back(candidate.get());
    freeable += candidate->bytes;
  }
  free_at_best = budget_ - std::min(budget_, in_use - freeable);
  if (entry.bytes > free_at_best) return false;  // evicting everything would not do: evict none
  std::sort(candidates.begin(), candidates.end(),
            [](const ModelEntry* a, const ModelEntry* b) { return a->last_used < b->last_used; });
  for (ModelEntry* victim : candidates) {
    if (in_use + entry.bytes <= budget_) break;
    in_use -= victim->bytes;
    ++victim->evictions;
    evicted.push_back(victim->spec.name);
    dead.push_back(retire_locked(*victim));
    victim->retiring.reset();  // no lease holds it: it dies before the load
  }
  return true;
}

std::vector<ModelRegistry::Completion> ModelRegistry::settle_waiters_locked(
    const ModelEntry& entry, const std::optional<ModelError>& error) {
  std::vector<Completion> completions;
  auto waiter = waiters_.begin();
  while (waiter != waiters_.end()) {
    if (waiter->entry.get() != &entry) {
      ++waiter;
      continue;
    }
    AcquireResult result;
    if (error) {
      result.error = *error;
    } else {
      result.lease.emplace(lease_locked(waiter->entry));
    }
    completions.emplace_back(std::move(waiter->done), std::move(result));
    waiter = waiters_.erase(waiter);
  }
  return completions;
}

void ModelRegistry::run_load(const std::shared_ptr<ModelEntry>& entry) {
  const std::string& name = entry->spec.name;
  std::vector<std::string> evicted;
  std::vector<std::shared_ptr<const LoadedModel>> dead;
  std::vector<Completion> completions;
  std::optional<ModelError> refusal;
  {
    std::lock_guard lock(mutex_);
    if (entry->state != ModelState::kLoading) return;
    if (budget_ > 0 && entry->bytes > budget_) {
      entry->state = ModelState::kFailed;
      entry->failure_kind = ModelError::Kind::kTooLarge;
      entry->error = "it needs " + bytes_text(entry->bytes) +
                     ", more than the whole model memory " + "budget of " + bytes_text(budget_);
      refusal = ModelError(ModelError::Kind::kTooLarge, name,
                           "cannot load model '" + name + "': " + entry->error);
    } else if (uint64_t free_at_best = 0; !make_room_locked(*entry, evicted, dead, free_at_best)) {
      entry->state = ModelState::kUnloaded;
      entry->error = "needs " + bytes_text(entry->bytes) + ", " + bytes_text(free_at_best) +
                     " free after evicting every idle unpinned model";
      refusal = ModelError(ModelError::Kind::kNoRoom, name,
                           "cannot load model '" + name + "': " + entry->error);
    }
    if (refusal) completions = settle_waiters_locked(*entry, refusal);
  }
  for (const std::string& victim : evicted) {
    emit({"model_evict", victim, "ok", "least recently used; making room for " + name, 0, "lru"});
  }
  dead.clear();  // the evicted engines are gone before the new one is built
  if (refusal) {
    emit({"model_load", name, "error", refusal->what(), 0,
          refusal->kind() == ModelError::Kind::kTooLarge ? "too_large" : "no_room"});
    for (auto& [done, result] : completions) done(std::move(result));
    return;
  }
  const auto started = Clock::now();
  std::optional<ModelError> failure;
  std::string category;  // the audit record's detail: an error category, never a file name
  std::shared_ptr<LoadedModel> loaded;
  try {
    loaded = std::make_shared<LoadedModel>(load_(entry->spec, [this, &entry] {
      std::lock_guard lock(mutex_);
      entry->state = ModelState::kWarmingUp;
    }));
    loaded->loaded_at_unix = unix_seconds();
  } catch (const std::exception& error) {
    failure = ModelError(ModelError::Kind::kLoadFailed, name,
                         "model '" + name + "' failed to load: " + error.what());
    const auto* typed = dynamic_cast<const Error*>(&error);
    category = typed != nullptr ? std::string(error_code_name(typed->code())) : "load failed";
    std::lock_guard lock(mutex_);
    entry->error = error.what();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  {
    std::lock_guard lock(mutex_);
    if (failure) {
      entry->state = ModelState::kFailed;
      entry->failure_kind = ModelError::Kind::kLoadFailed;
    } else {
      entry->loaded = std::move(loaded);
      entry->state = ModelState::kReady;
      entry->error.clear();
      ++entry->loads;
      touch(*entry);
    }
    completions = settle_waiters_locked(*entry, failure);
  }
  emit({"model_load", name, failure ? "error" : "ok", failure ? failure->what() : "", seconds,
        category});
  for (auto& [done, result] : completions) done(std::move(result));
}

void ModelRegistry::loader_loop() {
  for (;;) {
    std::vector<std::shared_ptr<const LoadedModel>> dead;
    std::shared_ptr<ModelEntry> next;
    {
      std::unique_lock lock(mutex_);
      loader_wake_.wait(
          lock, [this] { return stopping_ || !load_queue_.empty() || !graveyard_.empty(); });
      dead.swap(graveyard_);
      if (stopping_) {
        for (const auto& queued : load_queue_) queued->state = ModelState::kUnloaded;
        load_queue_.clear();
      } else if (!load_queue_.empty()) {
        next = std::move(load_queue_.front());
        load_queue_.pop_front();
      }
    }
    dead.clear();  // engines are destroyed here, with the mutex released
    if (next) {
      run_load(next);
    } else {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
  }
}

// ---- the waiter clock ----

void ModelRegistry::clock_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const auto earliest =
        std::min_element(waiters_.begin(), waiters_.end(),
                         [](const Waiter& a, const Waiter& b) { return a.deadline < b.deadline; });
    if (earliest == waiters_.end()) {
      clock_wake_.wait(lock);
      continue;
    }
    const Clock::time_point deadline = earliest->deadline;  // the vector may change meanwhile
    if (deadline > Clock::now()) {
      clock_wake_.wait_until(lock, deadline);
      continue;
    }
    std::vector<Completion> expired;
    const auto now = Clock::now();
    auto waiter = waiters_.begin();
    while (waiter != waiters_.end()) {
      if (waiter->deadline > now) {
        ++waiter;
        continue;
      }
      const std::string& name = waiter->entry->spec.name;
      AcquireResult result;
      result.error.emplace(ModelError::Kind::kTimeout, name,
                           "model '" + name + "' is not ready yet (" +
                               std::string(model_state_name(waiter->entry->state)) +
                               "); retry later");
      expired.emplace_back(std::move(waiter->done), std::move(result));
      waiter = waiters_.erase(waiter);
    }
    lock.unlock();
    for (auto& [done, result] : expired) done(std::move(result));
    lock.lock();
  }
}

}  // namespace autoglm::server::models
