// The response cache's seam in the OpenAI handlers: a one-choice deterministic request
// (temperature 0 or an explicit seed) is looked up by (model, revision, tenant, canonical
// request); a hit is answered here, as a chat.completion / text_completion object or replayed
// as an SSE stream (role, content, finish, usage, [DONE]), with the header
// x-autoglm-cache: hit-l1 or hit-l2. A miss sets SessionOptions::on_result so the session
// stores the answer when it completes. The tenant is the principal's tenant (else its id), ""
// with auth off, so tenants never share entries.
// Thread ownership: runs on the handler's (I/O) thread; the lookup blocks at most the Redis
// timeout (server/cache/redis_cache.h). Owner: the "cache" thread (a seam in "openai" code).
#pragma once

#include <memory>
#include <vector>

#include "server/http_types.h"
#include "server/openai/generation_session.h"
#include "server/openai/served_model.h"

namespace autoglm::server::openai {

// True when `responder` was answered from the cache; false when the caller must generate (and
// then `options` may carry on_result).
bool answer_from_cache(const ServedModel& model, const HttpRequest& request,
                       const std::shared_ptr<Responder>& responder, SessionOptions& options,
                       const std::vector<ChoiceJob>& jobs);

}  // namespace autoglm::server::openai
