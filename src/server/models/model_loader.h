// The production load of one model (the registry's LoadFunction): with require_signed_models,
// the integrity check of the model directory against its signed manifest (cheap checks at
// once, hashing beside the load; a failure is logged, audited as integrity_failure and refuses
// the model), then the Engine, the chat template, and one warm-up generation.
// Thread ownership: the returned function runs on the registry's loader thread; the audit sink
// is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "autoglm/engine.h"
#include "security/audit_sink.h"
#include "server/models/model_registry.h"

namespace autoglm::server::models {

struct LoaderSettings {
  EngineOptions engine;  // model_path is replaced by each model's directory
  bool warmup = true;    // one short generation before the model is ready
  bool require_signed_models = false;
  std::string trusted_keys;                         // comma-separated PEM paths
  std::shared_ptr<security::AuditSink> audit_sink;  // null: auditing off
};

LoadFunction make_engine_loader(LoaderSettings settings);

}  // namespace autoglm::server::models
