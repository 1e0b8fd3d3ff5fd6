// See cpu_backend.h. The loop nests follow the HF modeling code so that it can be read side by
// side with it; the heavy work (linear layers, attention) goes through the SIMD kernel table
// and the thread pool, the light elementwise work stays in the scalar kernels.
#include "backend/cpu/cpu_backend.h"

#include "backend/batch_check.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "core/error.h"

namespace autoglm {

using cpu::WeightMatrix;

namespace {

WeightMatrix as_matrix(const TensorView& t) {
  if (!t.present()) return {};
  const int64_t rows = t.shape.size() == 2 ? t.shape[0] : 1;
  const int64_t cols = t.shape.empty() ? 0 : t.shape.back();
  return WeightMatrix{t.dtype, t.data, rows, cols};
}

std::vector<float> as_vector(const TensorView& t) {
  if (!t.present()) return {};
  const WeightMatrix m = as_matrix(t);
  std::vector<float> out(static_cast<size_t>(m.cols));
  cpu::load_row(m, 0, out.data());
  return out;
}

template <typename T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

}  // namespace

CpuBackend::CpuBackend(const LoadedModel& model, KvPoolShape kv_pool, CpuBackendOptions options)
    : config_(model.config),
      pool_(kv_pool),
      kernels_(options.kernels ? *options.kernels : cpu::best_kernels()),
      pool_threads_(options.threads),
      rope_(model.config) {
  if (pool_.block_size <= 0 || pool_.num_blocks <= 0) {
    fail(ErrorCode::kInvalidArgument, "cpu backend: KV pool needs positive blocks and block size");
  }
  const ModelWeights& w = model.weights;
  embed_ = as_matrix(w.embed_tokens);
  lm_head_ = as_matrix(w.lm_head);
  final_norm_ = as_vector(w.final_norm);
  for (const LayerWeights& lw : w.layers) {
    LayerPlan p;
    p.input_norm = as_vector(lw[LayerTensor::kInputNorm]);
    p.post_self_attn_norm = as_vector(lw[LayerTensor::kPostSelfAttnNorm]);
    p.post_attention_norm = as_vector(lw[LayerTensor::kPostAttentionNorm]);
    p.post_mlp_norm = as_vector(lw[LayerTensor::kPostMlpNorm]);
    p.q_norm = as_vector(lw[LayerTensor::kQNorm]);
    p.k_norm = as_vector(lw[LayerTensor::kKNorm]);
    p.q = as_matrix(lw[LayerTensor::kQ]);
    p.q_bias = as_vector(lw[LayerTensor::kQBias]);
    p.k = as_matrix(lw[LayerTensor::kK]);
    p.k_bias = as_vector(lw[LayerTensor::kKBias]);
    p.v = as_matrix(lw[LayerTensor::kV]);
    p.v_bias = as_vector(lw[LayerTensor::kVBias]);
    p.o = as_matrix(lw[LayerTensor::kO]);
    p.o_bias = as_vector(lw[LayerTensor::kOBias]);
    p.gate_up = as_matrix(lw[LayerTensor::kGateUp]);
    p.gate = as_matrix(lw[LayerTensor::kGate]);
    p.gate_bias = as_vector(lw[LayerTensor::kGateBias]);
    p.up = as_matrix(lw[LayerTensor::kUp]);
    p.up_bias = as_vector(lw[LayerTensor::kUpBias]);
    p.down = as_matrix(lw[LayerTensor::kDown]);
    p.down_bias = as_vector(lw[LayerTensor::kDownBias]);
    layers_.push_back(std::move(p));
  }
  const size_t per_layer_side = static_cast<size_t>(pool_.num_blocks) * pool_.block_size *
                                config_.num_key_value_heads * config_.head_dim;
  kv_.assign(per_layer_side * 2 * layers_.size(), 0.0f);
  const int64_t max_cols = std::max({config_.hidden_size, config_.intermediate_size,
                                     config_.num_attention_heads * config_.head_dim});
  gemm_scratch_.resize(static_cast<size_t>(pool_threads_.size()));
  for (auto& s : gemm_scratch_) s.resize(static_cast<size_t>(cpu::kGemmRowBlock * max_cols));
  scores_.resize(static_cast<size_t>(pool_threads_.size()));
}

float* CpuBackend::k_cache(int layer, int32_t slot) {
  const size_t row = static_cast<size_t>(config_.num_key_value_heads * config_.head_dim);
  const size_t side = static_cast<size_t>(pool_.num_blocks) * pool_.block_size * row;
  return kv_.data() + (2 * static_cast<size_t>(layer)) * side + static_cast<size_t>(slot) * row;
}

float* CpuBackend::v_cache(int layer, int32_t slot) {
  const size_t row = static_cast<size_t>(config_.num_key_value_heads * config_.head_dim);
  const size_t side = static_cast<size_t>(pool_.num_blocks) * pool_.block_size * row;
  return kv_.data() + (2 * static_cast<size_t>(layer) + 1) * side + static_cast<size_t>(slot) * row;
}

void CpuBackend::check_batch(const ForwardBatch& b) const {
  BatchLimits limits;
  limits.backend = "cpu backend";
  limits.vocab_size = config_.vocab_size;
  limits.pool = pool_;
  check_forward_batch(b, limits);
}

void CpuBackend::forward(const ForwardBatch& batch, std::span<float> logits) {
  check_batch(batch);
  const int64_t n = batch.n_tokens();
  const int64_t hidden = config_.hidden_size;
  const int64_t n_out = static_cast<int64_t>(batch.logits_rows.size());
  if (logits.size() < static_cast<size_t>(n_out) * static_cast<size_t>(config_.vocab_size)) {
    fail(ErrorCode::kInternal, "cpu backend: logits buffer too small");
  }
  grow(x_, n * hidden);
  grow(h_, n * hidden);
  // RoPE angles once per step, shared by every layer.
  const int32_t half = rope_.rotary_dim() / 2;
  grow(rope_cos_, n * half);
  grow(rope_sin_, n * half);
  grow(token_seq_, n);
  for (int64_t t = 0; t < n; ++t) {
    rope_.angles(batch.positions[t], rope_cos_.data() + t * half, rope_sin_.data() + t * half);
  }
  for (int32_t s = 0; s < batch.n_seqs(); ++s) {
    for (int32_t t = batch.seq_start[s]; t < batch.seq_start[s + 1]; ++t) token_seq_[t] = s;
  }
  for (int64_t t = 0; t < n; ++t) cpu::load_row(embed_, batch.token_ids[t], x_.data() + t * hidden);

  for (size_t l = 0; l < layers_.size(); ++l) {
    attention_layer(batch, layers_[l], static_cast<int>(l));
    mlp_layer(n, layers_[l]);
  }

  // Only the requested rows reach the LM head, as one (small) batch.
  grow(final_row_, n_out * hidden);
  for (int64_t r = 0; r < n_out; ++r) {
    cpu::rms_norm(x_.data() + batch.logits_rows[r] * hidden, 1, hidden, final_norm_.data(),
                  static_cast<float>(config_.rms_norm_eps), final_row_.data() + r * hidden);
  }
  linear(final_row_.data(), n_out, lm_head_, {}, logits.data());
}

void CpuBackend::linear(const float* x, int64_t n_tokens, std::span<const LinearJob> jobs) {
  int64_t total_rows = 0;
  for (const LinearJob& j : jobs) total_rows += j.w->rows;
  // Rows are handed out in chunks (about 8 per thread) from a shared counter rather than split
  // statically: a core shared with another process then just takes fewer chunks. Each row is
  // still computed whole by one kernel call, so results do not depend on who computes it.
  const int64_t threads = pool_threads_.size();
  const int64_t grain = cpu::kGemmRowBlock;
  const int64_t chunk = std::max<int64_t>(grain, total_rows / (threads * 8) / grain * grain);
  const int64_t n_chunks = (total_rows + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  auto worker = [&](int th) {
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < n_chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t r0 = c * chunk;
      const int64_t r1 = std::min(total_rows, r0 + chunk);
      int64_t first = 0;  // first global row of the current job
      for (const LinearJob& j : jobs) {
        const int64_t lo = std::max(r0, first) - first;
        const int64_t hi = std::min(r1, first + j.w->rows) - first;
        if (lo < hi) {
          const float* b = j.bias->empty() ? nullptr : j.bias->data();
          kernels_.linear_rows(x, n_tokens, *j.w, b, lo, hi, j.y, gemm_scratch_[th].data());
        }
        first += j.w->rows;
      }
    }
  };
  if (n_chunks == 1) {
    worker(0);
  } else {
    pool_threads_.run(worker);
  }
}

void CpuBackend::rotate_and_store(const ForwardBatch& batch, int layer) {
  const int64_t n = batch.n_tokens();
  const int64_t hd = config_.head_dim;
  const int64_t nh = config_.num_attention_heads;
  const int64_t nkv = config_.num_key_value_heads;
  const int32_t rd = rope_.rotary_dim();
  const auto rotate =
      config_.rope_style == RopeStyle::kInterleaved ? cpu::rope_interleaved : cpu::rope_neox;
  for (int64_t t = 0; t < n; ++t) {
    const float* cos = rope_cos_.data() + t * (rd / 2);
    const float* sin = rope_sin_.data() + t * (rd / 2);
    for (int64_t h = 0; h < nh; ++h) rotate(q_.data() + (t * nh + h) * hd, rd, cos, sin);
    for (int64_t h = 0; h < nkv; ++h) rotate(k_.data() + (t * nkv + h) * hd, rd, cos, sin);
    std::copy_n(k_.data() + t * nkv * hd, nkv * hd, k_cache(layer, batch.slot_mapping[t]));
    std::copy_n(v_.data() + t * nkv * hd, nkv * hd, v_cache(layer, batch.slot_mapping[t]));
  }
}

void CpuBackend::attention_layer(const ForwardBatch& batch, const LayerPlan& p, int layer) {
  const int64_t n = batch.n_tokens();
  const int64_t hidden = config_.hidden_size;
  const int64_t hd = config_.head_dim;
  const int64_t nh = config_.num_attention_heads;
  const int64_t nkv = config_.num_key_value_heads;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  grow(q_, n * nh * hd);
  grow(k_, n * nkv * hd);
  grow(v_, n * nkv * hd);
  grow(attn_, n * nh * hd);

  cpu::rms_norm(x_.data(), n, hidden, p.input_norm.data(), eps, h_.data());
  const LinearJob qkv[] = {
      {&p.q, &p.q_bias, q_.data()}, {&p.k, &p.k_bias, k_.data()}, {&p.v, &p.v_bias, v_.data()}};
  linear(h_.data(), n, qkv);
  if (config_.qk_norm) {
    cpu::rms_norm(q_.data(), n * nh, hd, p.q_norm.data(), eps, q_.data());
    cpu::rms_norm(k_.data(), n * nkv, hd, p.k_norm.data(), eps, k_.data());
  }
  rotate_and_store(batch, layer);

  // One task per (token, KV head) and the query heads that share it, handed out dynamically:
  // causal rows differ in length. With fewer such tasks than two per thread (decode of a few
  // sequences), one task per query head instead, so that every thread has work.
  int32_t longest = 0;
  for (int64_t t = 0; t < n; ++t) longest = std::max(longest, batch.positions[t] + 1);
  const int64_t group = nh / nkv;
  const int64_t threads = static_cast<int64_t>(pool_threads_.size());
  const int64_t heads_per_task = n * nkv >= 2 * threads ? group : 1;
  for (auto& s : scores_) grow(s, static_cast<size_t>(heads_per_task * longest));
  const int64_t tasks_per_token = nh / heads_per_task;
  const int64_t tasks = n * tasks_per_token;
  std::atomic<int64_t> next{0};
  auto worker = [&](int thread) {
    for (int64_t task = next.fetch_add(1, std::memory_order_relaxed); task < tasks;
         task = next.fetch_add(1, std::memory_order_relaxed)) {
      const int32_t t = static_cast<int32_t>(task / tasks_per_token);
      attend(batch, layer, token_seq_[t], t, task % tasks_per_token * heads_per_task,
             heads_per_task, q_.data(), attn_.data(), scores_[thread].data());
    }
  };
  pool_threads_.run(worker);

  linear(attn_.data(), n, p.o, p.o_bias, h_.data());
  if (!p.post_self_attn_norm.empty()) {
    cpu::rms_norm(h_.data(), n, hidden, p.post_self_attn_norm.data(), eps, h_.data());
  }
  for (int64_t i = 0; i < n * hidden; ++i) x_[i] += h_[i];
}

void CpuBackend::attend(const ForwardBatch& b, int layer, int32_t seq, int32_t t, int64_t head,
                        int64_t heads, const float* q, float* out, float* scores) {
  const int64_t hd = config_.head_dim;
  const int64_t nh = config_.num_attention_heads;
  const int64_t kv_off = head / (nh / config_.num_key_value_heads) * hd;
  cpu::AttendArgs a;
  a.q = q + (t * nh + head) * hd;
  a.group = heads;
  a.hd = hd;
  a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  a.k = k_cache(layer, 0) + kv_off;
  a.v = v_cache(layer, 0) + kv_off;
  a.row_stride = config_.num_key_value_heads * hd;
  a.blocks = b.block_table.data() + seq * b.max_blocks_per_seq;
  a.block_size = pool_.block_size;
  a.n_keys = b.positions[t] + 1;  // causal: keys at positions 0..pos
  a.scores = scores;
  a.out = out + (t * nh + head) * hd;
  kernels_.attend(a);
}

void CpuBackend::mlp_layer(int64_t n, const LayerPlan& p) {
  const int64_t hidden = config_.hidden_size;
  const int64_t inter = config_.intermediate_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  grow(gate_, n * inter * 2);
  grow(up_, n * inter);
  cpu::rms_norm(x_.data(), n, hidden, p.post_attention_norm.data(), eps, h_.data());
  if (!p.gate_up.empty()) {
    // Fused [gate; up] rows: each token's output row holds gate then up.
    linear(h_.data(), n, p.gate_up, {}, gate_.data());
    pool_threads_.parallel_for(n, 1, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) {
        const float* row = gate_.data() + t * 2 * inter;
        cpu::silu_mul(row, row + inter, up_.data() + t * inter, inter);
      }
    });
  } else {
    const LinearJob gate_up[] = {{&p.gate, &p.gate_bias, gate_.data()},
                                 {&p.up, &p.up_bias, up_.data()}};
    linear(h_.data(), n, gate_up);
    pool_threads_.parallel_for(n, 1, [&](int64_t t0, int64_t t1, int) {
      cpu::silu_mul(gate_.data() + t0 * inter, up_.data() + t0 * inter, up_.data() + t0 * inter,
                    (t1 - t0) * inter);
    });
  }
  linear(up_.data(), n, p.down, p.down_bias, h_.data());
  if (!p.post_mlp_norm.empty()) {
    cpu::rms_norm(h_.data(), n, hidden, p.post_mlp_norm.data(), eps, h_.data());
  }
  for (int64_t i = 0; i < n * hidden; ++i) x_[i] += h_[i];
}

}  // namespace autoglm
