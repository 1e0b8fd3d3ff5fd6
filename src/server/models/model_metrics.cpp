// See model_metrics.h. Thread ownership: pure functions, any thread.
#include "server/models/model_metrics.h"

#include <fmt/format.h>

#include <map>
#include <sstream>

#include "server/prometheus.h"

namespace autoglm::server::models {
namespace {

struct Family {
  std::string header;  // HELP and TYPE lines
  std::string samples;
};

// The family a "# HELP name ..." or "# TYPE name ..." line names, else "".
std::string header_family(const std::string& line, const char* prefix) {
  if (line.rfind(prefix, 0) != 0) return "";
  const size_t start = std::string(prefix).size();
  const size_t end = line.find(' ', start);
  return line.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace

std::set<std::string> metric_family_names(const std::string& text) {
  std::set<std::string> names;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const std::string name = header_family(line, "# HELP ");
    if (!name.empty()) names.insert(name);
  }
  return names;
}

std::string merge_metric_families(const std::vector<std::string>& texts,
                                  const std::set<std::string>& first_only) {
  std::vector<std::string> order;
  std::map<std::string, Family> families;
  for (size_t t = 0; t < texts.size(); ++t) {
    std::istringstream lines(texts[t]);
    std::string current;  // "" until the first HELP line
    bool fresh = false;   // the family first appeared in this text: keep its header lines
    bool skip = false;
    for (std::string line; std::getline(lines, line);) {
      if (std::string name = header_family(line, "# HELP "); !name.empty()) {
        current = name;
        skip = t > 0 && first_only.count(name) > 0;
        fresh = families.count(name) == 0;
        if (fresh && !skip) order.push_back(name);
      }
      if (skip) continue;
      Family& family = families[current];
      if (current.empty() && family.header.empty() && family.samples.empty()) order.push_back("");
      const bool is_header = line.rfind("# ", 0) == 0;
      if (is_header && !fresh) continue;
      (is_header ? family.header : family.samples) += line + "\n";
    }
  }
  std::string out;
  for (const std::string& name : order) out += families[name].header + families[name].samples;
  return out;
}

std::string render_model_metrics(const ModelRegistry& registry) {
  const std::vector<ModelInfo> infos = registry.list();
  std::string out;
  const auto family = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  const auto label = [](const ModelInfo& info) {
    return "model_name=\"" + escape_label_value(info.name) + "\"";
  };
  family("autoglm:model_state", "gauge",
         "1 for the model's current state (unloaded, loading, warming_up, ready, failed, "
         "unloading), 0 for the others.");
  for (const ModelInfo& info : infos) {
    for (ModelState state : {ModelState::kUnloaded, ModelState::kLoading, ModelState::kWarmingUp,
                             ModelState::kReady, ModelState::kFailed, ModelState::kUnloading}) {
      out += fmt::format("autoglm:model_state{{{},state=\"{}\"}} {}\n", label(info),
                         model_state_name(state), info.state == state ? 1 : 0);
    }
  }
  family("autoglm:model_loads_total", "counter", "Successful loads of the model.");
  for (const ModelInfo& info : infos) {
    out += fmt::format("autoglm:model_loads_total{{{}}} {}\n", label(info), info.loads);
  }
  family("autoglm:model_evictions_total", "counter",
         "Times the model was evicted (least recently used) to make room for another.");
  for (const ModelInfo& info : infos) {
    out += fmt::format("autoglm:model_evictions_total{{{}}} {}\n", label(info), info.evictions);
  }
  family("autoglm:model_memory_bytes", "gauge",
         "Bytes the model is budgeted at (estimate: weights plus KV pool), whether loaded or not.");
  for (const ModelInfo& info : infos) {
    out += fmt::format("autoglm:model_memory_bytes{{{}}} {}\n", label(info), info.bytes);
  }
  family("autoglm:model_memory_budget_bytes", "gauge",
         "The memory budget loaded models share (0: unlimited).");
  out += fmt::format("autoglm:model_memory_budget_bytes {}\n", registry.memory_budget());
  return out;
}

}  // namespace autoglm::server::models
