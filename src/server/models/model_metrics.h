// /metrics over several models: every loaded engine's metrics (rendered one engine at a time
// with its model_name label) merged so that each metric family appears once, with one HELP
// and TYPE line and the samples of every model (the text format forbids a family twice), and
// the registry's own series: autoglm:model_state{model_name,state} (1 for the current state,
// 0 for the others), autoglm:model_loads_total, autoglm:model_evictions_total,
// autoglm:model_memory_bytes and autoglm:model_memory_budget_bytes.
// Thread ownership: pure functions over their inputs (the registry is thread-safe).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "server/models/model_registry.h"

namespace autoglm::server::models {

// Concatenates Prometheus text expositions family by family (a family starts at its "# HELP"
// line), keeping the first HELP/TYPE of each and the order of first appearance. Families named
// in `first_only` are taken from texts[0] only (series that are not per model).
std::string merge_metric_families(const std::vector<std::string>& texts,
                                  const std::set<std::string>& first_only);

// The family names in a text exposition, in order.
std::set<std::string> metric_family_names(const std::string& text);

std::string render_model_metrics(const ModelRegistry& registry);

}  // namespace autoglm::server::models
