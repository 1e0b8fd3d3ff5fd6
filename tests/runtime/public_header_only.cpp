// Compiled by the public_header_self_contained test with include/ as the ONLY include path:
// proves include/autoglm/engine.h (and the autoglm/*.h it includes) needs nothing from src/.
// It uses the public types so that a missing declaration fails the compile.
// Thread ownership: none (never run; compiled only).
#include <autoglm/engine.h>

int use_public_api(autoglm::Engine& engine) {
  autoglm::GenerationRequest request;
  request.prompt = "hello";
  request.sampling.temperature = 0.0f;
  request.stop.max_tokens = 4;
  request.session_id = "chat";
  const autoglm::GenerationOutput out = engine.generate(request);
  const std::shared_ptr<const autoglm::EngineMetricsSnapshot> metrics = engine.metrics();
  autoglm::Logprobs logprobs;
  logprobs.top.push_back({1, -0.5f});
  return static_cast<int>(out.token_ids.size()) + metrics->requests_running +
         static_cast<int>(metrics->time_to_first_token_seconds.count()) +
         static_cast<int>(logprobs.top.size()) + engine.options().kv_block_size;
}
