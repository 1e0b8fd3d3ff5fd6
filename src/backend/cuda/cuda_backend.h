// The CUDA backend's public face: whether a usable GPU is present, and a factory that uploads a
// loaded model to the GPU and returns a Backend (backend.h) running the same batched forward as
// the CPU backend in BF16/FP16 with fp32 accumulation. Includable from plain C++ (no CUDA
// headers), so the engine and the CLI build the same way with or without AUTOGLM_CUDA.
// Thread ownership: make_cuda_backend runs on the loading thread; the Backend it returns is then
// driven by one thread only (the engine thread), like every Backend.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "core/dtype.h"
#include "model/model_dir.h"

namespace autoglm {

// Progress of the weight upload: bytes of weights copied so far, out of `total`.
using UploadProgress = std::function<void(uint64_t done, uint64_t total)>;

struct CudaBackendOptions {
  int device = 0;
  // Share of the device's TOTAL memory this backend may take, once, for weights, workspace
  // and the KV pool together.
  double memory_fraction = 0.90;
  int32_t block_size = 16;           // tokens per KV block
  int32_t max_num_seqs = 64;         // sequences per step
  int32_t max_batched_tokens = 512;  // tokens per step
  int64_t max_context_len = 0;       // 0: the model's max_position_embeddings
  // Logits rows computed per lm_head pass; a step asking for more runs several passes.
  // 0: max_num_seqs.
  int32_t max_logits_rows = 0;
  // > 0: exactly this many KV blocks (tests, several engines on one GPU); 0: fill the budget.
  int32_t num_kv_blocks = 0;
  // Activation/KV element type: kBF16 or kF16. Empty: the checkpoint's (F32 -> BF16).
  std::optional<DType> dtype;
  // Hold the KV cache in FP8 E4M3 (unscaled, saturating at +-448): half the bytes per token, so
  // twice the tokens in the same budget and half the attention's reads. Needs head_dim 64 or
  // 128 and a block_size that is a multiple of 16.
  bool kv_cache_fp8 = false;
  // Hold the layer projections (q/k/v, o, gate/up, down) in FP8 E4M3 with an fp32 scale per
  // output channel, quantized from the checkpoint at load, and quantize each projection's input
  // per token every step: W8A8 on the FP8 tensor cores (Gemm::linear_fp8). Half the weight
  // bytes. The embedding, lm_head, norms and biases keep their types. Needs hidden, q and
  // intermediate sizes that are multiples of 16.
  bool weights_fp8 = false;
  // Replay pure decode steps from CUDA graphs (decode_graphs.h); off: every step is launched
  // kernel by kernel.
  bool cuda_graphs = true;
  UploadProgress progress;  // may be empty
};

// True when a CUDA device with compute capability 9.x is present. Otherwise false, and `why`
// (when given) says what is missing: no driver, no device, or which compute capability.
bool cuda_available(std::string* why = nullptr);

// Uploads `model`'s weights and allocates workspace and the KV pool within the budget. The KV
// pool's size is decided here: callers (the engine) read it back through kv_pool() and size
// their block manager from it. forward() brings logits rows back to the host (fp32);
// forward_sample() selects the tokens on the device and brings back only those.
// `model` is only read during this call. Throws autoglm::Error when CUDA is unusable, the
// model does not fit (the message gives weights, KV bytes per block, budget and free memory)
// or the model uses something this backend does not support.
std::unique_ptr<Backend> make_cuda_backend(const LoadedModel& model,
                                           const CudaBackendOptions& options);

}  // namespace autoglm
