// Internal to the registry (model_registry*.cpp): one configured model's record. `spec` and
// `response_cache` never change; every other field is guarded by ModelRegistry's mutex.
// Thread ownership: see model_registry.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "server/models/model_registry.h"

namespace autoglm::server::models {

struct ModelEntry {
  ModelSpec spec;                                        // immutable
  std::shared_ptr<cache::ResponseCache> response_cache;  // immutable
  bool pinned = false;
  uint64_t bytes = 0;
  ModelState state = ModelState::kUnloaded;
  ModelError::Kind failure_kind = ModelError::Kind::kLoadFailed;  // with kFailed
  std::string error;
  std::shared_ptr<const LoadedModel> loaded;  // set exactly while ready
  std::weak_ptr<const LoadedModel> retiring;  // an unloaded engine that leases still hold
  uint64_t retiring_bytes = 0;
  int64_t leases = 0;  // leases on `loaded`
  std::chrono::steady_clock::time_point last_used{};
  int64_t last_used_unix = 0;
  uint64_t loads = 0;
  uint64_t evictions = 0;
};

inline int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A use of the model, for the LRU.
inline void touch(ModelEntry& entry) {
  entry.last_used = std::chrono::steady_clock::now();
  entry.last_used_unix = unix_seconds();
}

}  // namespace autoglm::server::models
