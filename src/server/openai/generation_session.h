// One HTTP exchange's generation: submits its n engine requests (one per choice) with
// Engine::submit(request, DeltaCallback), merges their deltas into one chat.completion /
// text_completion response or one SSE stream, and ends it exactly once. A client that
// disconnects (Responder::on_disconnect) or stops reading (send_event false) cancels every
// request of the exchange; a submit that is rejected cancels the ones already queued and
// answers the mapped error (engine_errors.h).
// Thread ownership: start() runs on the handler's thread; the engine thread hands each delta to
// Responder::defer, which formats it on the connection's strand (an I/O thread), so the engine
// goes on to its next step; disconnects arrive on an I/O thread. One mutex serializes them;
// Responder calls are made under it (they only post to the connection's executor) so events keep
// their order. Owner: the "openai" thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autoglm/engine.h"
#include "server/http_types.h"
#include "server/openai/response_format.h"

namespace autoglm::server::openai {

enum class Endpoint { kChat, kCompletion };

struct ChoiceJob {
  int32_t index = 0;         // choices[i].index
  int32_t prompt_group = 0;  // choices of one prompt share it (usage counts the prompt once)
  int32_t prompt_tokens = 0;
  std::string echo_prefix;  // completions with echo: the prompt text
  GenerationRequest request;
};

struct SessionOptions {
  Endpoint endpoint = Endpoint::kChat;
  ResponseContext context;
  bool stream = false;
  bool include_usage = false;
  bool with_logprobs = false;
  // Called once when the exchange ends (done, failed or abandoned) with what it used: the
  // rate limiter charges it to the caller's tokens per minute. May be empty.
  std::function<void(const UsageTotals&)> on_usage;
  // Response cache (response_cache_hook.h): called once when a one-choice exchange completes
  // (stop or length), streamed or not, with the whole answer. Called under the session's lock on
  // the connection's I/O thread, so it must not block. May be empty.
  std::function<void(const ChoiceResult&, const UsageTotals&)> on_result;
};

// Submits every job and answers through `responder` (now or from deferred delta work).
void run_generation(Engine& engine, std::shared_ptr<Responder> responder, SessionOptions options,
                    std::vector<ChoiceJob> jobs);

}  // namespace autoglm::server::openai
