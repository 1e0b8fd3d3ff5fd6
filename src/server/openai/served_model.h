// ServedModel: what the OpenAI handlers need to know about the one model this server serves:
// its public name, the Engine, the chat template, the readiness flag and the request limits.
// The server builds one at startup and keeps it alive (and unmoved) while routes are
// registered. Thread ownership: read-only after startup, from any I/O thread (the Engine and
// the template are thread-safe; `ready` is atomic). Owner: the "openai" thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "autoglm/engine.h"
#include "security/audit_sink.h"
#include "server/openai/request_mapping.h"
#include "tokenizer/model_chat_template.h"

namespace autoglm::server {
class QuotaGate;
namespace cache {
class ResponseCache;
}
}  // namespace autoglm::server

namespace autoglm::server::openai {

struct ServedModel {
  std::string name;          // the id clients send as "model" and /v1/models lists
  Engine* engine = nullptr;  // not owned
  // The model's chat template; null: /v1/chat/completions answers 400 (completions still work).
  const ModelChatTemplate* chat_template = nullptr;
  // null: always ready; false: every route here answers 503 (loading, warming up, draining).
  const std::atomic<bool>* ready = nullptr;
  // Caps on requests; vocab_size 0 is filled from the engine by register_openai_routes.
  MappingLimits limits;
  // End-to-end limit per request (the engine ends it with kTimeout: 408, see README.md).
  std::optional<std::chrono::milliseconds> request_timeout;
  // Per-caller rate limits for the generation routes; null: none (not owned).
  QuotaGate* quota = nullptr;
  // Deterministic answers are served from and stored in it (response_cache_hook.h); null: off.
  cache::ResponseCache* response_cache = nullptr;
  int64_t created = 0;  // Unix seconds shown by /v1/models; 0: when routes were registered

  // The longest sequence (prompt + output) one request may have: the engine's context limit,
  // bounded by the KV pool. Filled by register_openai_routes when 0.
  int64_t max_model_len = 0;

  // Inference audit (inference_audit.h): the sink (null: off) and the failure policy.
  security::AuditSink* audit_sink = nullptr;
  bool audit_fail_closed = false;
};

// Fills the derived fields (limits.vocab_size, max_model_len, created) from the engine.
void complete_served_model(ServedModel& model);

}  // namespace autoglm::server::openai
