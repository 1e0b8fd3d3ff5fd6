// See cuda_backend_impl.h: one engine step on the GPU. The batch arrays (and, for a sampled
// step, the sampling parameters after them) go up in one H2D copy of a packed pinned buffer;
// every layer then runs as a fixed sequence of launches over the
// whole ragged batch (no host loop over tokens); the logits rows come back in one D2H copy,
// which is the step's only synchronisation. forward_sample() samples on the device instead and
// brings back only the chosen ids (and requested logprobs), as a queued step (cuda_steps.cpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backend/batch_check.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/sampling.h"
#include "core/error.h"

namespace autoglm::cuda {

void CudaBackend::check_batch(const ForwardBatch& b, int32_t previous_rows) const {
  // Attention derives each token's key position from context_len while RoPE uses
  // positions[], so they must agree exactly.
  BatchLimits limits;
  limits.backend = "cuda backend";
  limits.vocab_size = config_.vocab_size;
  limits.pool = pool_;
  limits.max_tokens = options_.max_batched_tokens;
  limits.max_seqs = options_.max_num_seqs;
  limits.max_blocks_per_seq = max_blocks_per_seq_;
  limits.max_context = max_context_;
  limits.max_logits_rows = options_.max_batched_tokens;
  limits.exact_positions = true;
  limits.previous_sample_rows = previous_rows;
  check_forward_batch(b, limits);
}

CudaBackend::DeviceBatch CudaBackend::pack_batch_arrays(const ForwardBatch& b) {
  int32_t* host = static_cast<int32_t*>(current_slot().ints.get());
  size_t at = 0;
  const auto put = [&](std::span<const int32_t> a) {
    std::memcpy(host + at, a.data(), a.size() * sizeof(int32_t));
    const size_t offset = at;
    at += a.size();
    return buf_.ints + offset;
  };
  DeviceBatch d;
  d.token_ids = put(b.token_ids);
  d.positions = put(b.positions);
  d.logits_rows = put(b.logits_rows);
  AttentionBatch& a = d.attention;
  a.slot_mapping = put(b.slot_mapping);
  a.seq_start = put(b.seq_start);
  a.context_len = put(b.context_len);
  a.block_table = put(b.block_table);
  const int32_t slot_index = current_slot_index();
  d.sample_slot = put(std::span<const int32_t>(&slot_index, 1));
  a.max_blocks_per_seq = b.max_blocks_per_seq;
  a.n_tokens = b.n_tokens();
  a.n_seqs = b.n_seqs();
  a.block_size = pool_.block_size;
  d.logits_rows_in_order = b.logits_rows.size() == static_cast<size_t>(a.n_tokens);
  for (size_t r = 0; r < b.logits_rows.size() && d.logits_rows_in_order; ++r) {
    d.logits_rows_in_order = b.logits_rows[r] == static_cast<int32_t>(r);
  }
  // The sequences with more than one token, listed in place: a mixed step's prefill chunks.
  int32_t* prefill = host + at;
  for (int32_t s = 0; s < b.n_seqs(); ++s) {
    const int32_t tokens = b.seq_start[s + 1] - b.seq_start[s];
    a.max_query_len = std::max(a.max_query_len, tokens);
    a.max_context_len = std::max(a.max_context_len, b.context_len[s]);
    if (tokens > 1) prefill[a.n_prefill_seqs++] = s;
  }
  // AUTOGLM_CUDA_SPLIT_MIXED=0 runs mixed steps in one prefill launch (for measuring).
  static const bool split_mixed = switch_on("AUTOGLM_CUDA_SPLIT_MIXED");
  if (split_mixed && a.n_prefill_seqs > 0 && a.n_prefill_seqs < a.n_seqs) {
    a.prefill_seqs = buf_.ints + at;
    at += static_cast<size_t>(a.n_prefill_seqs);
  } else {
    a.n_prefill_seqs = 0;  // one kind of sequence: one launch
  }
  d.packed_ints = at;
  return d;
}

void CudaBackend::upload_packed(const DeviceBatch& db) {
  AUTOGLM_CUDA_CHECK(cudaMemcpyAsync(buf_.ints, current_slot().ints.get(),
                                     db.packed_ints * sizeof(int32_t), cudaMemcpyHostToDevice,
                                     stream_.get()));
}

void CudaBackend::forward(const ForwardBatch& batch, std::span<float> logits) {
  guarded([&] {
    const int64_t n_out = static_cast<int64_t>(batch.logits_rows.size());
    if (logits.size() < static_cast<size_t>(n_out) * static_cast<size_t>(config_.vocab_size)) {
      fail(ErrorCode::kInternal, "cuda backend: logits buffer too small");
    }
    const DeviceBatch db = run_layers(batch);
    copy_logits(db, n_out, logits);
  });
}

void CudaBackend::forward_sample(const ForwardBatch& batch, const SampleBatch& sampling,
                                 std::span<RowSample> out) {
  submit_sample(batch, sampling);
  collect_sample(out);
}

void CudaBackend::pack_sampling(const SampleBatch& sampling, int32_t rows, DeviceBatch& db) {
  const int32_t n_adjust = static_cast<int32_t>(sampling.adjustments.size());
  for (const RowSamplingParams& p : sampling.rows) {
    if (p.adjust_begin < 0 || p.adjust_begin > p.adjust_end || p.adjust_end > n_adjust) {
      fail(ErrorCode::kInternal, "cuda backend: a sampling row's adjustments are out of range");
    }
  }
  // At a 16-byte offset past the batch arrays: for a graph's bucket that offset is the same at
  // every step, as the pointers its sampler was captured with require.
  const size_t at = (db.packed_ints + 3) / 4 * 4;
  char* host = reinterpret_cast<char*>(static_cast<int32_t*>(current_slot().ints.get()) + at);
  // Rows past the batch's (a padded decode step) sample greedily and are never read back.
  const size_t params_bytes = static_cast<size_t>(rows) * sizeof(RowSamplingParams);
  const size_t adjust_bytes = sampling.adjustments.size() * sizeof(LogitAdjustment);
  std::memcpy(host, sampling.rows.data(), sampling.rows.size() * sizeof(RowSamplingParams));
  std::fill(reinterpret_cast<RowSamplingParams*>(host) + sampling.rows.size(),
            reinterpret_cast<RowSamplingParams*>(host) + rows, RowSamplingParams{});
  std::memcpy(host + params_bytes, sampling.adjustments.data(), adjust_bytes);
  db.sample_params = reinterpret_cast<const RowSamplingParams*>(buf_.ints + at);
  db.adjustments = reinterpret_cast<const LogitAdjustment*>(
      reinterpret_cast<const char*>(db.sample_params) + params_bytes);
  static_assert(sizeof(RowSamplingParams) % 16 == 0 && sizeof(LogitAdjustment) % 4 == 0);
  db.packed_ints = at + (params_bytes + adjust_bytes) / sizeof(int32_t);
}

CudaBackend::DeviceBatch CudaBackend::run_layers(const ForwardBatch& batch) {
  check_batch(batch);
  const DeviceBatch db = pack_batch_arrays(batch);
  upload_packed(db);
  encode_layers(db);
  return db;
}

void CudaBackend::encode_layers(const DeviceBatch& db) {
  const int32_t n = db.attention.n_tokens;
  const cudaStream_t s = stream_.get();
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const int64_t hidden = config_.hidden_size;
  // Fed-back ids (previous_sample_token) read the previous step's samples from buf_.samples,
  // which this step's sampler overwrites only after the embedding.
  const EmbeddingSource tokens{db.token_ids, buf_.samples, config_.vocab_size, embed_};
  const Fp8Rows h8 = norm_fp8_rows(n);
  if (embedding_norm_) {
    embedding_norm(tokens, n, layers_[0].input_norm, buf_.x, buf_.h, hidden, eps, act_, s, h8);
  } else {
    embedding_gather(tokens, n, act_, hidden, buf_.x, s);
    residual_add_norm(buf_.x, Delta{}, nullptr, layers_[0].input_norm, buf_.h, n, hidden, eps, act_,
                      s, h8);
  }
  for (size_t l = 0; l < layers_.size(); ++l) {
    const DeviceLayer& L = layers_[l];
    const Delta attn = attention_layer(db, static_cast<int>(l));
    residual_add_norm(buf_.x, attn, L.post_self_attn_norm, L.post_attention_norm, buf_.h, n, hidden,
                      eps, act_, s, h8);
    const Delta mlp = mlp_layer(n, static_cast<int>(l));
    if (l + 1 < layers_.size()) {
      residual_add_norm(buf_.x, mlp, L.post_mlp_norm, layers_[l + 1].input_norm, buf_.h, n, hidden,
                        eps, act_, s, h8);
    } else if (final_norm_in_last_layer(db)) {
      residual_add_norm(buf_.x, mlp, L.post_mlp_norm, final_norm_, buf_.final_rows, n, hidden, eps,
                        act_, s);
    } else {
      residual_add_norm(buf_.x, mlp, L.post_mlp_norm, nullptr, nullptr, n, hidden, eps, act_, s);
    }
  }
}

bool CudaBackend::final_norm_in_last_layer(const DeviceBatch& db) const {
  return final_norm_fused_ && db.logits_rows_in_order && db.attention.n_tokens <= max_logits_rows_;
}

Fp8Rows CudaBackend::norm_fp8_rows(int32_t n) const {
  if (!options_.weights_fp8 || !fp8_norm_rows_ || n <= kGemvFp8MaxRows) return {};
  return {buf_.x8, buf_.x8_scales};
}

bool CudaBackend::gemv_takes(int64_t m, int64_t n, int64_t k, const void* x, const void* w) const {
  return m <= kGemvRows || (mma_gemv_ && m <= kGemvMaxRows && n <= kMmaGemvMaxOutputs &&
                            gemv_mma_supported(m, k, x, w));
}

void CudaBackend::project(const void* x, const void* w, const float* w_scale, const void* bias,
                          void* y, int64_t m, int64_t n, int64_t k, ActType type, bool out_f32,
                          cudaStream_t stream) {
  if (w_scale != nullptr) {
    if (out_f32) fail(ErrorCode::kInternal, "cuda backend: an FP8 projection with fp32 output");
    const bool x8_ready = x == buf_.h && norm_fp8_rows(static_cast<int32_t>(m)).bytes != nullptr;
    if (!x8_ready) {
      if (gemv_fp8_supported(m, k, x, w)) {
        gemv_fp8(x, w, w_scale, bias, y, m, n, k, type, stream);
        return;
      }
      quantize_rows_e4m3(x, act_dtype_, m, k, buf_.x8, buf_.x8_scales, stream);
    }
    if (gemv_fp8_mma_supported(m, k, buf_.x8, w)) {
      gemv_fp8_mma(buf_.x8, buf_.x8_scales, w, w_scale, bias, y, m, n, k, type, stream);
    } else {
      gemm_->linear_fp8(buf_.x8, buf_.x8_scales, w, w_scale, bias, y, m, n, k, type, stream);
    }
  } else if (gemv_takes(m, n, k, x, w)) {
    gemv(x, w, bias, y, m, n, k, type, out_f32, stream);
  } else {
    gemm_->linear(x, w, bias, y, m, n, k, type, out_f32, stream);
  }
}

Delta CudaBackend::project_delta(const void* x, const void* w, const float* w_scale,
                                 const void* bias, int64_t m, int64_t k) {
  const int64_t hidden = config_.hidden_size;
  if (w_scale == nullptr && k_split_ && !gemv_takes(m, hidden, k, x, w) && m <= kKSplitMaxRows &&
      bias == nullptr && k % (8 * kKSplitParts) == 0) {
    gemm_->linear_k_split(x, w, buf_.delta_parts, m, hidden, k, kKSplitParts, act_, stream_.get());
    return Delta{nullptr, buf_.delta_parts, kKSplitParts};
  }
  project(x, w, w_scale, bias, buf_.delta, m, hidden, k, act_, false, stream_.get());
  return Delta{buf_.delta};
}

Delta CudaBackend::attention_layer(const DeviceBatch& db, int layer) {
  const DeviceLayer& L = layers_[layer];
  const cudaStream_t s = stream_.get();
  const int32_t n = db.attention.n_tokens;
  const int64_t hd = config_.head_dim;
  const int64_t q_dim = config_.num_attention_heads * hd;
  const int64_t kv_dim = config_.num_key_value_heads * hd;
  const QkvLayout& layout = qkv_layout_;
  // k and v go straight into this layer's KV pool rows (RoPE fused with the KV write).
  const KvDestination kv{kv_[layer].k, kv_[layer].v, db.attention.slot_mapping,
                         options_.kv_cache_fp8, options_.block_size};
  if (fused_qkv_rope_ && n <= kGemvRows) {
    gemv_rope_qkv(buf_.h, L.qkv, L.qkv_bias, n, config_.hidden_size, layout, db.positions,
                  buf_.rope_cos, buf_.rope_sin, buf_.q, kv, act_, s);
  } else {
    project(buf_.h, L.qkv, L.qkv_scale, L.qkv_bias, buf_.qkv, n, q_dim + 2 * kv_dim,
            config_.hidden_size, act_, false, s);
    qkv_norm_rope(buf_.qkv, db.positions, n, layout, L.q_norm, L.k_norm,
                  static_cast<float>(config_.rms_norm_eps), buf_.rope_cos, buf_.rope_sin, buf_.q,
                  kv, act_, s);
  }
  const AttentionShape shape{layout.num_heads, layout.num_kv_heads, layout.head_dim,
                             1.0f / std::sqrt(static_cast<float>(hd)), options_.kv_cache_fp8};
  if (optimised_attention_) {
    const size_t need = paged_attention_workspace_bytes(db.attention, shape);
    if (need > buf_.attention_ws_bytes) {
      fail(ErrorCode::kInternal, "cuda backend: attention needs " + std::to_string(need) +
                                     " bytes of workspace, " +
                                     std::to_string(buf_.attention_ws_bytes) + " were reserved");
    }
    paged_attention(db.attention, shape, buf_.q, kv_[layer], buf_.attn, buf_.attention_ws,
                    buf_.attention_ws_bytes, act_, s);
  } else {
    paged_attention_plain(db.attention, shape, buf_.q, kv_[layer], buf_.attn, act_, s);
  }
  return project_delta(buf_.attn, L.o, L.o_scale, L.o_bias, n, q_dim);
}

Delta CudaBackend::mlp_layer(int32_t n, int layer) {
  const DeviceLayer& L = layers_[layer];
  const cudaStream_t s = stream_.get();
  const int64_t inter = config_.intermediate_size;
  if (fused_decode_ && n <= kGemvRows) {
    gemv_swiglu(buf_.h, L.gate_up, L.gate_up_bias, buf_.mlp, n, inter, config_.hidden_size, act_,
                s);
  } else if (fused_fp8_swiglu_ && L.gate_up_scale != nullptr &&
             gemv_fp8_supported(n, config_.hidden_size, buf_.h, L.gate_up)) {
    gemv_fp8_swiglu(buf_.h, L.gate_up, L.gate_up_scale, L.gate_up_bias, buf_.mlp, n, 2 * inter,
                    config_.hidden_size, act_, s);
  } else {
    project(buf_.h, L.gate_up, L.gate_up_scale, L.gate_up_bias, buf_.gate_up, n, 2 * inter,
            config_.hidden_size, act_, false, s);
    silu_mul(buf_.gate_up, n, inter, buf_.mlp, act_, s);
  }
  return project_delta(buf_.mlp, L.down, L.down_scale, L.down_bias, n, inter);
}

void CudaBackend::logits_pass(const DeviceBatch& db, int64_t r0, int32_t rows) {
  const cudaStream_t s = stream_.get();
  // Else the last layer's norm has left every row's final norm in buf_.final_rows already (one
  // pass: all its rows fit).
  if (!final_norm_in_last_layer(db)) {
    gather_rms_norm(buf_.x, db.logits_rows + r0, rows, config_.hidden_size, final_norm_,
                    static_cast<float>(config_.rms_norm_eps), buf_.final_rows, act_, s);
  }
  project(buf_.final_rows, lm_head_, nullptr, nullptr, buf_.logits, rows, config_.vocab_size,
          config_.hidden_size, act_, true, s);
}

void CudaBackend::copy_logits(const DeviceBatch& db, int64_t n_out, std::span<float> logits) {
  const cudaStream_t s = stream_.get();
  const int64_t vocab = config_.vocab_size;
  // Rows beyond max_logits_rows take extra passes (and extra syncs): only tests ask for that
  // many logits rows.
  for (int64_t r0 = 0; r0 < n_out; r0 += max_logits_rows_) {
    const int32_t rows = static_cast<int32_t>(std::min<int64_t>(max_logits_rows_, n_out - r0));
    logits_pass(db, r0, rows);
    const size_t bytes = static_cast<size_t>(rows) * static_cast<size_t>(vocab) * sizeof(float);
    AUTOGLM_CUDA_CHECK(
        cudaMemcpyAsync(host_logits_.get(), buf_.logits, bytes, cudaMemcpyDeviceToHost, s));
    AUTOGLM_CUDA_CHECK(cudaStreamSynchronize(s));
    std::memcpy(logits.data() + r0 * vocab, host_logits_.get(), bytes);
  }
  // A step without logits rows still ends synchronised: the next step rewrites the pinned
  // batch buffer that this step's H2D copy reads.
  if (n_out == 0) AUTOGLM_CUDA_CHECK(cudaStreamSynchronize(s));
}

void CudaBackend::encode_sampling(const DeviceBatch& db, int64_t rows_total) {
  const cudaStream_t s = stream_.get();
  const int32_t vocab = static_cast<int32_t>(config_.vocab_size);
  // Passes of max_logits_rows share buf_.logits; the stream orders each pass's sampling before
  // the next pass's lm_head overwrites it, so no sync is needed between them.
  for (int64_t r0 = 0; r0 < rows_total; r0 += max_logits_rows_) {
    const int32_t rows = static_cast<int32_t>(std::min<int64_t>(max_logits_rows_, rows_total - r0));
    logits_pass(db, r0, rows);
    const HostSamples host =
        mapped_samples_
            ? HostSamples{static_cast<RowSample*>(host_samples_.get()) + r0, db.sample_slot,
                          static_cast<int64_t>(options_.max_batched_tokens)}
            : HostSamples{};
    sample_rows(buf_.logits, rows, vocab, db.sample_params + r0, db.adjustments, buf_.samples + r0,
                buf_.sample_scan, s, host);
  }
}

}  // namespace autoglm::cuda
