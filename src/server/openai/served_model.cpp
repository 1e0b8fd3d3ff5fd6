// See served_model.h. Owner: the "openai" thread.
#include "server/openai/served_model.h"

#include <algorithm>

#include "core/error.h"
#include "model/model_config.h"
#include "runtime/kv_block_pool.h"
#include "server/openai/response_format.h"

namespace autoglm::server::openai {

void complete_served_model(ServedModel& model) {
  if (model.engine == nullptr) fail(ErrorCode::kInvalidArgument, "ServedModel: no engine");
  const ModelConfig& config = model.engine->model_config();
  const EngineOptions& options = model.engine->options();
  if (model.limits.vocab_size <= 0) model.limits.vocab_size = config.vocab_size;
  if (model.max_model_len <= 0) {
    // The same bounds the engine's admission control applies (engine.cpp): the configured
    // context (at most the model's), and the tokens the KV pool holds.
    int64_t context = config.max_position_embeddings;
    if (options.max_context_length > 0) {
      context =
          context > 0 ? std::min(context, options.max_context_length) : options.max_context_length;
    }
    KvPoolShape pool{options.num_kv_blocks, options.kv_block_size};
    if (options.num_kv_blocks <= 0) {
      pool = kv_pool_for_budget(config, options.kv_cache_bytes, options.kv_block_size);
    }
    const int64_t pool_tokens = static_cast<int64_t>(pool.num_blocks) * pool.block_size;
    model.max_model_len = context > 0 ? std::min(context, pool_tokens) : pool_tokens;
  }
  if (model.created == 0) model.created = unix_now();
}

}  // namespace autoglm::server::openai
