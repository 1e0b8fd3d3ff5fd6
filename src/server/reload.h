// Hot reload: components whose configuration can change without a restart (API keys, JWT
// keys, rate limits, the log level) register a reloader here; SIGHUP and POST /admin/reload
// run them all. A reloader that throws leaves its component on the old configuration.
// Connections are never dropped: each component swaps an immutable snapshot atomically.
// Thread ownership: safe from any thread; reload_all() runs reloaders one at a time (a mutex),
// on the thread that asked (the signal thread or an I/O thread).
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace autoglm::server {

struct ReloadOutcome {
  std::string component;  // "api_keys", "jwt", "rate_limits", "log_level"
  bool ok = true;
  std::string error;  // when !ok: why, naming the file (never a secret)
};

class ReloadRegistry {
 public:
  void add(std::string component, std::function<void()> reload) {
    std::lock_guard lock(mutex_);
    reloaders_.push_back({std::move(component), std::move(reload)});
  }

  std::vector<ReloadOutcome> reload_all() {
    std::lock_guard lock(mutex_);
    std::vector<ReloadOutcome> outcomes;
    for (const auto& [component, reload] : reloaders_) {
      ReloadOutcome outcome{component, true, {}};
      try {
        reload();
      } catch (const std::exception& error) {
        outcome.ok = false;
        outcome.error = error.what();
      }
      outcomes.push_back(std::move(outcome));
    }
    return outcomes;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<std::string, std::function<void()>>> reloaders_;
};

}  // namespace autoglm::server
