// See cuda_backend.h / cuda_backend_impl.h: device checks, the memory budget, and laying out
// and uploading the weights. The forward step itself is in cuda_forward.cpp.
#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/sampling.h"
#include "backend/cuda/weight_upload.h"
#include "backend/rope.h"
#include "core/error.h"

namespace autoglm {

bool cuda_available(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = std::string("no usable CUDA driver/device: ") + cudaGetErrorString(status);
    return false;
  }
  if (count == 0) {
    if (why) *why = "no CUDA device present";
    return false;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = "cannot read the properties of CUDA device 0";
    return false;
  }
  if (prop.major != 9) {
    if (why) {
      *why = std::string("CUDA device 0 (") + prop.name + ") has compute capability " +
             std::to_string(prop.major) + "." + std::to_string(prop.minor) +
             "; this build targets 9.x (Hopper)";
    }
    return false;
  }
  return true;
}

std::unique_ptr<Backend> make_cuda_backend(const LoadedModel& model,
                                           const CudaBackendOptions& options) {
  return std::make_unique<cuda::CudaBackend>(model, options);
}

namespace cuda {
namespace {

constexpr size_t kFreeMemoryReserve = 256u << 20;  // cuBLAS and the context grow a little later

int select_device(int device) {
  std::string why;
  if (!cuda_available(&why)) fail(ErrorCode::kUnsupported, "CUDA backend: " + why);
  int count = 0;
  AUTOGLM_CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count) {
    fail(ErrorCode::kInvalidArgument, "CUDA backend: device " + std::to_string(device) +
                                          " does not exist (" + std::to_string(count) +
                                          " present)");
  }
  AUTOGLM_CUDA_CHECK(cudaSetDevice(device));
  return device;
}

DType pick_dtype(const LoadedModel& model, const CudaBackendOptions& options) {
  if (options.dtype) {
    if (*options.dtype != DType::kBF16 && *options.dtype != DType::kF16) {
      fail(ErrorCode::kInvalidArgument, "CUDA backend: dtype must be BF16 or F16, not " +
                                            std::string(dtype_name(*options.dtype)));
    }
    return *options.dtype;
  }
  return model.model_dtype() == DType::kF16 ? DType::kF16 : DType::kBF16;
}

void check_options(const CudaBackendOptions& o, const ModelConfig& c) {
  const auto bad = [](const std::string& what) {
    fail(ErrorCode::kInvalidArgument, "CUDA backend: " + what);
  };
  if (o.block_size <= 0 || o.max_num_seqs <= 0 || o.max_batched_tokens <= 0) {
    bad("block_size, max_num_seqs and max_batched_tokens must be positive");
  }
  if (!(o.memory_fraction > 0.0 && o.memory_fraction <= 1.0)) {
    bad("memory_fraction must be in (0, 1]");
  }
  if (o.num_kv_blocks < 0 || o.max_logits_rows < 0 || o.max_context_len < 0) {
    bad("num_kv_blocks, max_logits_rows and max_context_len must not be negative");
  }
  if (o.kv_cache_fp8 && ((c.head_dim != 64 && c.head_dim != 128) || o.block_size % 16 != 0)) {
    fail(ErrorCode::kUnsupported,
         "CUDA backend: an FP8 KV cache needs head_dim 64 or 128 (the model's is " +
             std::to_string(c.head_dim) + ") and a block_size that is a multiple of 16 (" +
             std::to_string(o.block_size) + " given)");
  }
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  if (o.weights_fp8 &&
      (c.hidden_size % 16 != 0 || q_dim % 16 != 0 || c.intermediate_size % 16 != 0)) {
    fail(ErrorCode::kUnsupported,
         "CUDA backend: FP8 weights need hidden, q (heads x head_dim) and intermediate sizes "
         "that are multiples of 16 (the model's are " +
             std::to_string(c.hidden_size) + ", " + std::to_string(q_dim) + " and " +
             std::to_string(c.intermediate_size) + ")");
  }
  if (c.head_dim > kMaxHeadDim || c.num_key_value_heads <= 0 ||
      c.num_attention_heads % c.num_key_value_heads != 0) {
    fail(ErrorCode::kUnsupported, "CUDA backend: head_dim " + std::to_string(c.head_dim) +
                                      " with " + std::to_string(c.num_attention_heads) + "/" +
                                      std::to_string(c.num_key_value_heads) +
                                      " heads is not supported");
  }
}

}  // namespace

CudaBackend::CudaBackend(const LoadedModel& model, const CudaBackendOptions& options)
    : config_(model.config), options_(options), device_(select_device(options.device)) {
  check_options(options_, config_);
  act_dtype_ = pick_dtype(model, options_);
  act_ = act_dtype_ == DType::kBF16 ? ActType::kBF16 : ActType::kF16;
  max_context_ =
      options_.max_context_len > 0 ? options_.max_context_len : config_.max_position_embeddings;
  if (max_context_ <= 0) {
    fail(ErrorCode::kInvalidArgument,
         "CUDA backend: the model has no max_position_embeddings; set max_context_len");
  }
  max_blocks_per_seq_ =
      static_cast<int32_t>((max_context_ + options_.block_size - 1) / options_.block_size);
  max_logits_rows_ =
      options_.max_logits_rows > 0 ? options_.max_logits_rows : options_.max_num_seqs;
  optimised_attention_ = config_.head_dim == 64 || config_.head_dim == 128;
  qkv_layout_.num_heads = static_cast<int32_t>(config_.num_attention_heads);
  qkv_layout_.num_kv_heads = static_cast<int32_t>(config_.num_key_value_heads);
  qkv_layout_.head_dim = static_cast<int32_t>(config_.head_dim);
  qkv_layout_.rotary_dim = static_cast<int32_t>(config_.rotary_dim);
  qkv_layout_.interleaved = config_.rope_style == RopeStyle::kInterleaved;
  allocate_within_budget(model);
  // The fused GEMV epilogues read weights in the activation type: an FP8-weight model runs the
  // FP8 projections (CudaBackend::project) and the separate RoPE kernel, and at one or two rows
  // the FP8 GEMV's own SwiGLU epilogue (gemv_fp8_swiglu).
  fused_decode_ = switch_on("AUTOGLM_CUDA_FUSE") && !options_.weights_fp8;
  fused_fp8_swiglu_ = switch_on("AUTOGLM_CUDA_FUSE") && options_.weights_fp8;
  k_split_ = switch_on("AUTOGLM_CUDA_KSPLIT");
  mma_gemv_ = switch_on("AUTOGLM_CUDA_GEMV_MMA");
  fp8_norm_rows_ = switch_on("AUTOGLM_CUDA_FP8_NORM_ROWS");
  embedding_norm_ = switch_on("AUTOGLM_CUDA_EMBED_NORM");
  final_norm_fused_ = switch_on("AUTOGLM_CUDA_FINAL_NORM_FUSED");
  // Per-head q/k norms (Qwen3) need the whole head before RoPE: those models keep qkv_norm_rope.
  fused_qkv_rope_ = fused_decode_ && gemv_rope_qkv_supported(qkv_layout_) &&
                    std::all_of(layers_.begin(), layers_.end(), [](const DeviceLayer& l) {
                      return l.q_norm == nullptr && l.k_norm == nullptr;
                    });
}

CudaBackend::~CudaBackend() {
  // Work still queued (a forward that threw) must finish before its buffers are freed.
  cudaStreamSynchronize(stream_.get());
}

size_t CudaBackend::kv_element_bytes() const {
  return options_.kv_cache_fp8 ? 1 : dtype_size(act_dtype_);
}

size_t CudaBackend::kv_bytes_per_block() const {
  return static_cast<size_t>(config_.num_hidden_layers) * 2 * options_.block_size *
         static_cast<size_t>(config_.num_key_value_heads * config_.head_dim) * kv_element_bytes();
}

size_t CudaBackend::ints_capacity() const {
  const size_t t = static_cast<size_t>(options_.max_batched_tokens);
  const size_t s = static_cast<size_t>(options_.max_num_seqs);
  // token ids, positions, logits rows, slots; seq_start, context_len, the mixed step's prefill
  // list; the step's slot index; the block table; then, 16-byte aligned, the sampling parameters
  // and adjustments (CudaBackend::pack_sampling).
  const size_t sampling_bytes =
      t * sizeof(RowSamplingParams) + kMaxDeviceAdjustments * sizeof(LogitAdjustment);
  return 4 * t + 3 * s + 2 + s * static_cast<size_t>(max_blocks_per_seq_) + 3 +
         sampling_bytes / sizeof(int32_t);
}

std::vector<UploadJob> CudaBackend::layout_weights(const LoadedModel& model, DeviceArena& arena) {
  std::vector<UploadJob> jobs;
  // Several HF tensors stored back to back as one device matrix (their rows concatenated). With
  // `scales`, a projection of an FP8-weight model: E4M3 rows, their scales into *scales.
  const auto fused = [&](std::initializer_list<const TensorView*> parts, DType dst,
                         float** scales = nullptr) -> void* {
    const bool quantized = scales != nullptr && options_.weights_fp8;
    if (quantized) dst = DType::kF8E4M3;
    size_t total = 0, present = 0;
    for (const TensorView* t : parts) {
      if (t->present()) ++present, total += t->element_count();
    }
    if (present == 0) return nullptr;
    if (present != parts.size()) {
      fail(ErrorCode::kUnsupported, "CUDA backend: only some of the tensors fused with " +
                                        (*parts.begin())->name + " are present");
    }
    char* base = static_cast<char*>(arena.take(total * dtype_size(dst)));
    const int64_t row_len = quantized ? (*parts.begin())->shape.back() : 0;
    if (quantized) *scales = arena.take_n<float>(total / static_cast<size_t>(row_len));
    size_t offset = 0;
    for (const TensorView* t : parts) {
      UploadJob job{t->data, t->dtype, t->element_count(),
                    base == nullptr ? nullptr : base + offset * dtype_size(dst), dst};
      if (quantized) {
        if (t->shape.size() != 2 || t->shape.back() != row_len) {
          fail(ErrorCode::kUnsupported,
               "CUDA backend: " + t->name + " is not a matrix with rows as long as its group's");
        }
        job.row_len = row_len;
        job.row_scales = *scales == nullptr ? nullptr : *scales + offset / row_len;
      }
      jobs.push_back(job);
      offset += t->element_count();
    }
    return base;
  };
  const auto one = [&](const TensorView& t) { return fused({&t}, act_dtype_); };
  const auto norm = [&](const TensorView& t) {
    return static_cast<float*>(fused({&t}, DType::kF32));
  };
  const ModelWeights& w = model.weights;
  embed_ = one(w.embed_tokens);
  lm_head_ = w.lm_head.data == w.embed_tokens.data ? embed_ : one(w.lm_head);
  final_norm_ = norm(w.final_norm);
  layers_.clear();
  for (const LayerWeights& lw : w.layers) {
    using R = LayerTensor;
    DeviceLayer d;
    d.qkv = fused({&lw[R::kQ], &lw[R::kK], &lw[R::kV]}, act_dtype_, &d.qkv_scale);
    d.qkv_bias = fused({&lw[R::kQBias], &lw[R::kKBias], &lw[R::kVBias]}, act_dtype_);
    d.o = fused({&lw[R::kO]}, act_dtype_, &d.o_scale);
    d.o_bias = one(lw[R::kOBias]);
    if (lw[R::kGateUp].present()) {
      d.gate_up = fused({&lw[R::kGateUp]}, act_dtype_, &d.gate_up_scale);
    } else {
      d.gate_up = fused({&lw[R::kGate], &lw[R::kUp]}, act_dtype_, &d.gate_up_scale);
      d.gate_up_bias = fused({&lw[R::kGateBias], &lw[R::kUpBias]}, act_dtype_);
    }
    d.down = fused({&lw[R::kDown]}, act_dtype_, &d.down_scale);
    d.down_bias = one(lw[R::kDownBias]);
    d.input_norm = norm(lw[R::kInputNorm]);
    d.post_self_attn_norm = norm(lw[R::kPostSelfAttnNorm]);
    d.post_attention_norm = norm(lw[R::kPostAttentionNorm]);
    d.post_mlp_norm = norm(lw[R::kPostMlpNorm]);
    d.q_norm = norm(lw[R::kQNorm]);
    d.k_norm = norm(lw[R::kKNorm]);
    layers_.push_back(d);
  }
  return jobs;
}

void CudaBackend::layout_workspace(DeviceArena& arena) {
  const size_t t = static_cast<size_t>(options_.max_batched_tokens);
  const size_t r = static_cast<size_t>(max_logits_rows_);
  const size_t hidden = config_.hidden_size, inter = config_.intermediate_size;
  const size_t q_dim = config_.num_attention_heads * config_.head_dim;
  const size_t kv_dim = config_.num_key_value_heads * config_.head_dim;
  const size_t act = dtype_size(act_dtype_);
  buf_.x = arena.take_n<float>(t * hidden);
  buf_.h = arena.take(t * hidden * act);
  buf_.qkv = arena.take(t * (q_dim + 2 * kv_dim) * act);
  buf_.q = arena.take(t * q_dim * act);
  buf_.attn = arena.take(t * q_dim * act);
  buf_.delta = arena.take(t * hidden * act);
  buf_.gate_up = arena.take(t * 2 * inter * act);
  buf_.mlp = arena.take(t * inter * act);
  buf_.final_rows = arena.take(r * hidden * act);
  buf_.logits = arena.take_n<float>(r * static_cast<size_t>(config_.vocab_size));
  buf_.ints = arena.take_n<int32_t>(ints_capacity());
  const size_t sample_rows = static_cast<size_t>(options_.max_batched_tokens);
  buf_.samples = arena.take_n<RowSample>(sample_rows);
  buf_.sample_scan =
      arena.take(sample_scan_bytes(max_logits_rows_, static_cast<int32_t>(config_.vocab_size)));
  buf_.attention_ws_bytes = 0;
  if (optimised_attention_) {
    // The largest step allowed: every limit at once.
    AttentionBatch worst;
    worst.n_tokens = options_.max_batched_tokens;
    worst.n_seqs = options_.max_num_seqs;
    worst.max_query_len = options_.max_batched_tokens;
    worst.max_context_len = static_cast<int32_t>(max_context_);
    worst.max_blocks_per_seq = max_blocks_per_seq_;
    worst.block_size = options_.block_size;
    const AttentionShape shape{static_cast<int32_t>(config_.num_attention_heads),
                               static_cast<int32_t>(config_.num_key_value_heads),
                               static_cast<int32_t>(config_.head_dim), 0.0f, options_.kv_cache_fp8};
    buf_.attention_ws_bytes = paged_attention_workspace_bytes(worst, shape);
  }
  buf_.attention_ws = arena.take(buf_.attention_ws_bytes);
  buf_.gemm_ws = arena.take(Gemm::kWorkspaceBytes);
  const size_t half = static_cast<size_t>(config_.rotary_dim / 2);
  buf_.rope_cos = arena.take_n<float>(static_cast<size_t>(max_context_) * half);
  buf_.rope_sin = arena.take_n<float>(static_cast<size_t>(max_context_) * half);
  buf_.delta_parts = arena.take_n<float>(kKSplitParts * std::min<size_t>(t, kKSplitMaxRows) *
                                         static_cast<size_t>(hidden));
  if (options_.weights_fp8) {
    buf_.x8 = arena.take(t * std::max({hidden, q_dim, inter}));
    buf_.x8_scales = arena.take_n<float>(t);
  }
}

void CudaBackend::allocate_within_budget(const LoadedModel& model) {
  DeviceArena count_weights, count_workspace;
  layout_weights(model, count_weights);
  layout_workspace(count_workspace);
  const size_t weight_bytes = count_weights.used();
  const size_t workspace_bytes = count_workspace.used();
  size_t free_bytes = 0, total_bytes = 0;
  AUTOGLM_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const double budget = options_.memory_fraction * static_cast<double>(total_bytes);
  const double usable = std::min(
      budget,
      static_cast<double>(free_bytes > kFreeMemoryReserve ? free_bytes - kFreeMemoryReserve : 0));
  const double fixed = static_cast<double>(weight_bytes + workspace_bytes);
  const size_t per_block = kv_bytes_per_block();
  const double kv_room = std::max(0.0, usable - fixed);
  int64_t blocks = options_.num_kv_blocks > 0 ? options_.num_kv_blocks
                                              : static_cast<int64_t>(kv_room / per_block);
  blocks = std::min<int64_t>(blocks, INT32_MAX / options_.block_size);  // slots are int32
  const int64_t min_blocks =
      options_.num_kv_blocks > 0
          ? 1
          : (options_.max_batched_tokens + options_.block_size - 1) / options_.block_size;
  if (fixed > usable || static_cast<double>(blocks) * per_block > kv_room || blocks < min_blocks) {
    fail(ErrorCode::kResourceExhausted,
         "CUDA backend: the model does not fit: weights " + format_gib(weight_bytes) +
             " + workspace " + format_gib(workspace_bytes) + " + KV pool (" +
             std::to_string(per_block) + " bytes per block of " +
             std::to_string(options_.block_size) + " tokens, at least " +
             std::to_string(std::max(min_blocks, blocks)) + " blocks) exceed the budget of " +
             format_gib(budget) + " (memory_fraction " + std::to_string(options_.memory_fraction) +
             " of " + format_gib(total_bytes) + "), with " + format_gib(free_bytes) +
             " free on the device");
  }
  pool_ = KvPoolShape{static_cast<int32_t>(blocks), options_.block_size};

  weights_ = DeviceArena(DeviceBuffer(weight_bytes, "weights"));
  const std::vector<UploadJob> jobs = layout_weights(model, weights_);
  uint64_t source_bytes = 0;
  for (const UploadJob& j : jobs) source_bytes += j.count * dtype_size(j.src_type);
  {
    WeightUploader uploader(stream_.get(), source_bytes, options_.progress);
    for (const UploadJob& j : jobs) {
      if (j.row_len > 0) {
        const auto rows = static_cast<int64_t>(j.count) / j.row_len;
        uploader.upload_rows_e4m3(j.src, j.src_type, rows, j.row_len, j.dst, j.row_scales);
      } else {
        uploader.upload(j.src, j.src_type, j.count, j.dst, j.dst_type);
      }
    }
    uploader.finish();
  }
  workspace_ = DeviceArena(DeviceBuffer(workspace_bytes, "workspace"));
  layout_workspace(workspace_);
  // AUTOGLM_CUDA_POISON_WORKSPACE=1 (for tests) fills the scratch buffers with NaN bytes, so that
  // a kernel reading scratch memory no kernel of the step wrote fails the same way on every
  // machine, not only where fresh device memory happens to hold such bytes.
  if (const char* poison = std::getenv("AUTOGLM_CUDA_POISON_WORKSPACE");
      poison != nullptr && std::strcmp(poison, "1") == 0) {
    AUTOGLM_CUDA_CHECK(cudaMemsetAsync(workspace_.base(), 0xFF, workspace_.used(), stream_.get()));
  }
  gemm_ = std::make_unique<Gemm>(buf_.gemm_ws, Gemm::kWorkspaceBytes);
  upload_rope_table();

  const size_t side = static_cast<size_t>(blocks) * options_.block_size *
                      static_cast<size_t>(config_.num_key_value_heads * config_.head_dim) *
                      kv_element_bytes();
  const size_t kv_bytes = side * 2 * static_cast<size_t>(config_.num_hidden_layers);
  kv_memory_ = DeviceBuffer(kv_bytes, "KV pool");
  // Zeroed once (~30 ms for 100 GB): the padding rows of a graphed decode step read a key from
  // block 0, which must be finite even before any sequence wrote it.
  AUTOGLM_CUDA_CHECK(cudaMemsetAsync(kv_memory_.get(), 0, kv_bytes, stream_.get()));
  kv_.clear();
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    char* base = static_cast<char*>(kv_memory_.get()) + 2 * static_cast<size_t>(l) * side;
    kv_.push_back(PagedKvLayer{base, base + side});
  }
  host_logits_ = PinnedBuffer(static_cast<size_t>(max_logits_rows_) *
                                  static_cast<size_t>(config_.vocab_size) * sizeof(float),
                              "logits");
  const size_t sample_rows = static_cast<size_t>(options_.max_batched_tokens);
  host_samples_ = PinnedBuffer(kSlots * sample_rows * sizeof(RowSample), "sampled tokens");
  for (size_t i = 0; i < kSlots; ++i) {
    StepSlot& slot = slots_[i];
    slot.ints = PinnedBuffer(ints_capacity() * sizeof(int32_t), "batch arrays");
    slot.samples = static_cast<RowSample*>(host_samples_.get()) + i * sample_rows;
  }
  // The sampler may write host_samples_ only where the device sees it at the host's address
  // (unified addressing maps pinned memory so); AUTOGLM_CUDA_MAPPED_SAMPLES=0 copies instead.
  void* seen = nullptr;
  const bool addressable = cudaHostGetDevicePointer(&seen, host_samples_.get(), 0) == cudaSuccess;
  if (!addressable) (void)cudaGetLastError();  // a refused mapping is not a later call's error
  mapped_samples_ =
      switch_on("AUTOGLM_CUDA_MAPPED_SAMPLES") && addressable && seen == host_samples_.get();
}

void CudaBackend::upload_rope_table() {
  const RopeTable rope(config_);
  const size_t half = static_cast<size_t>(rope.rotary_dim() / 2);
  if (half == 0) return;
  std::vector<float> cos(static_cast<size_t>(max_context_) * half);
  std::vector<float> sin(cos.size());
  for (int64_t p = 0; p < max_context_; ++p) {
    rope.angles(static_cast<int32_t>(p), cos.data() + p * half, sin.data() + p * half);
  }
  AUTOGLM_CUDA_CHECK(
      cudaMemcpy(buf_.rope_cos, cos.data(), cos.size() * sizeof(float), cudaMemcpyHostToDevice));
  AUTOGLM_CUDA_CHECK(
      cudaMemcpy(buf_.rope_sin, sin.data(), sin.size() * sizeof(float), cudaMemcpyHostToDevice));
}

}  // namespace cuda
}  // namespace autoglm
