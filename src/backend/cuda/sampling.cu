// See sampling.h. One 1024-thread block per logits row, in passes over the row (which stays in
// L2): adjust, max/argmax, then for sampled rows an exact top-k and top-p selection by radix
// select over the order-preserving bit pattern of the logits (four 8-bit digit passes), min-p,
// and the draw as a block-wide prefix sum over the kept weights in token-id order. No sort:
// the selected set is "every token above a threshold key, plus the lowest-id ties at the key",
// which is exactly the set row_sampler.cpp's sorted prefix keeps. Masses are summed in 2^-40
// fixed point (the top token weighs 1), so block-wide sums are exact and order-independent.
// Thread ownership: launched by the engine thread on the backend's stream.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <climits>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/sampling.h"

namespace autoglm::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr double kFixedOne = 1099511627776.0;  // 2^40: weights in [0, 1] as integers
using Fixed = unsigned long long;

// Larger floats map to larger unsigned keys (negative floats reversed), so thresholds on
// logits become thresholds on integers that can be selected digit by digit.
__device__ __forceinline__ uint32_t order_key(float value) {
  const uint32_t bits = __float_as_uint(value);
  return (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
}

// The tokens a selection keeps: key above `key`, or equal to it with an id below `id_bound`.
struct Selection {
  uint32_t key = 0;
  int32_t id_bound = INT_MAX;
  __device__ bool keeps(uint32_t k, int32_t id) const {
    return k > key || (k == key && id < id_bound);
  }
};

struct BestToken {
  float value;
  int32_t id;
};

// Higher value first, then the lower id: the order row_sampler.cpp ranks tokens in.
struct HeavierOp {
  __device__ BestToken operator()(const BestToken& a, const BestToken& b) const {
    if (a.value != b.value) return a.value > b.value ? a : b;
    return a.id < b.id ? a : b;
  }
};

struct RowContext {
  float* logits;
  int32_t vocab;
  float max_logit;
  float inv_temperature;
  int32_t begin, end;  // this thread's contiguous slice, for ordered (id-wise) passes
};

__device__ __forceinline__ float weight_of(const RowContext& row, float logit) {
  return expf((logit - row.max_logit) * row.inv_temperature);
}
__device__ __forceinline__ Fixed fixed_weight(const RowContext& row, float logit) {
  return static_cast<Fixed>(static_cast<double>(weight_of(row, logit)) * kFixedOne);
}

union SharedScratch {
  cub::BlockReduce<BestToken, kThreads>::TempStorage best;
  cub::BlockReduce<Fixed, kThreads>::TempStorage fixed_sum;
  cub::BlockReduce<double, kThreads>::TempStorage double_sum;
  cub::BlockReduce<int32_t, kThreads>::TempStorage int_min;
  cub::BlockScan<Fixed, kThreads>::TempStorage scan;
};

struct SharedState {
  SharedScratch scratch;
  Fixed histogram[256];
  Fixed fixed_value;
  BestToken best;
  uint32_t prefix;
  int32_t id;
  double double_value;
};

// Exclusive prefix of `local` over the threads in id order, and the block total.
__device__ Fixed exclusive_prefix(SharedState& s, Fixed local, Fixed* total) {
  Fixed prefix = 0;
  cub::BlockScan<Fixed, kThreads>(s.scratch.scan).ExclusiveSum(local, prefix, *total);
  __syncthreads();
  return prefix;
}

__device__ int32_t block_min(SharedState& s, int32_t value) {
  const int32_t result = cub::BlockReduce<int32_t, kThreads>(s.scratch.int_min)
                             .Reduce(value, [](int32_t a, int32_t b) { return a < b ? a : b; });
  if (threadIdx.x == 0) s.id = result;
  __syncthreads();
  const int32_t out = s.id;
  __syncthreads();
  return out;
}

// The id of the `n`-th (1-based) token in id order that is in `prior` with key exactly `key`;
// INT_MAX when there are fewer. Gives the id bound of a selection's ties.
__device__ int32_t nth_tie_id(SharedState& s, const RowContext& row, Selection prior, uint32_t key,
                              Fixed n) {
  Fixed local = 0;
  for (int32_t i = row.begin; i < row.end; ++i) {
    const uint32_t k = order_key(row.logits[i]);
    local += (k == key && prior.keeps(k, i)) ? 1 : 0;
  }
  Fixed total = 0;
  const Fixed before = exclusive_prefix(s, local, &total);
  int32_t found = INT_MAX;
  if (before < n && n <= before + local) {
    Fixed count = before;
    for (int32_t i = row.begin; i < row.end; ++i) {
      const uint32_t k = order_key(row.logits[i]);
      if (k == key && prior.keeps(k, i) && ++count == n) {
        found = i;
        break;
      }
    }
  }
  return block_min(s, found);
}

// Radix select within `prior`: the largest key K such that the tokens with key >= K reach
// `target`, counted (by_mass false: 1 each) or weighed (by_mass: fixed-point weights).
// Returns K and writes the count/mass strictly above K to *above.
__device__ uint32_t select_key(SharedState& s, const RowContext& row, Selection prior, bool by_mass,
                               Fixed target, Fixed* above) {
  uint32_t prefix = 0, mask = 0;
  Fixed above_sum = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads) s.histogram[b] = 0;
    __syncthreads();
    // Run-length accumulation: neighbouring tokens often share a digit, so a thread flushes
    // one atomic per run instead of one per token.
    int run_bin = -1;
    Fixed run = 0;
    for (int32_t i = row.begin; i < row.end; ++i) {
      const float logit = row.logits[i];
      const uint32_t k = order_key(logit);
      if ((k & mask) != prefix || !prior.keeps(k, i)) continue;
      const int bin = static_cast<int>((k >> shift) & 255u);
      if (bin != run_bin) {
        if (run_bin >= 0) atomicAdd(&s.histogram[run_bin], run);
        run_bin = bin;
        run = 0;
      }
      run += by_mass ? fixed_weight(row, logit) : 1;
    }
    if (run_bin >= 0) atomicAdd(&s.histogram[run_bin], run);
    __syncthreads();
    if (threadIdx.x == 0) {
      Fixed cumulative = above_sum;
      int b = 255;
      for (; b > 0; --b) {
        if (cumulative + s.histogram[b] >= target) break;
        cumulative += s.histogram[b];
      }
      s.prefix = prefix | (static_cast<uint32_t>(b) << shift);
      s.fixed_value = cumulative;
    }
    __syncthreads();
    prefix = s.prefix;
    above_sum = s.fixed_value;
    mask |= 255u << shift;
    __syncthreads();
  }
  *above = above_sum;
  return prefix;
}

__device__ Fixed block_sum(SharedState& s, Fixed value) {
  const Fixed total = cub::BlockReduce<Fixed, kThreads>(s.scratch.fixed_sum).Sum(value);
  if (threadIdx.x == 0) s.fixed_value = total;
  __syncthreads();
  const Fixed out = s.fixed_value;
  __syncthreads();
  return out;
}

__device__ Fixed selected_mass(SharedState& s, const RowContext& row, Selection a, Selection b) {
  Fixed local = 0;
  for (int32_t i = threadIdx.x; i < row.vocab; i += kThreads) {
    const float logit = row.logits[i];
    const uint32_t k = order_key(logit);
    if (a.keeps(k, i) && b.keeps(k, i)) local += fixed_weight(row, logit);
  }
  return block_sum(s, local);
}

// Temperature sampling with top-k, top-p and min-p, then the draw in id order.
__device__ int32_t draw_token(SharedState& s, const RowContext& row, const RowSamplingParams& p,
                              int32_t argmax) {
  const Selection all;
  Selection top_k;
  if (p.top_k > 0 && p.top_k < row.vocab) {
    Fixed above = 0;
    const Fixed k = static_cast<Fixed>(p.top_k);
    top_k.key = select_key(s, row, all, false, k, &above);
    top_k.id_bound = nth_tie_id(s, row, all, top_k.key, k - above);
    if (top_k.id_bound != INT_MAX) top_k.id_bound += 1;
  }
  Selection top_p;
  if (p.top_p < 1.0f) {
    const Fixed total = selected_mass(s, row, top_k, all);
    const Fixed target =
        static_cast<Fixed>(static_cast<double>(p.top_p) * static_cast<double>(total));
    Fixed above = 0;
    top_p.key = select_key(s, row, top_k, true, target > 0 ? target : 1, &above);
    // Ties at the key join in id order while the mass before them is still short of target.
    float key_logit = 0.0f;
    const uint32_t bits = (top_p.key & 0x80000000u) != 0 ? (top_p.key & 0x7fffffffu) : ~top_p.key;
    key_logit = __uint_as_float(bits);
    const Fixed w = fixed_weight(row, key_logit);
    const Fixed needed = w == 0 ? ULLONG_MAX : (target > above ? (target - above + w - 1) / w : 1);
    top_p.id_bound = nth_tie_id(s, row, top_k, top_p.key, needed > 0 ? needed : 1);
    if (top_p.id_bound != INT_MAX) top_p.id_bound += 1;
  }
  const float min_weight = p.min_p;
  const auto kept_weight = [&](int32_t i) -> Fixed {
    const float logit = row.logits[i];
    const uint32_t k = order_key(logit);
    if (!top_k.keeps(k, i) || !top_p.keeps(k, i)) return 0;
    const float w = weight_of(row, logit);
    if (w < min_weight && i != argmax) return 0;
    return static_cast<Fixed>(static_cast<double>(w) * kFixedOne);
  };
  Fixed local = 0;
  for (int32_t i = row.begin; i < row.end; ++i) local += kept_weight(i);
  Fixed kept_mass = 0;
  const Fixed before = exclusive_prefix(s, local, &kept_mass);
  const Fixed r = static_cast<Fixed>(p.uniform * static_cast<double>(kept_mass));
  int32_t found = INT_MAX;
  if (before <= r && r < before + local) {
    Fixed cumulative = before;
    for (int32_t i = row.begin; i < row.end; ++i) {
      cumulative += kept_weight(i);
      if (r < cumulative) {
        found = i;
        break;
      }
    }
  }
  const int32_t token = block_min(s, found);
  return token == INT_MAX ? argmax : token;
}

__device__ BestToken block_best(SharedState& s, BestToken local) {
  const BestToken best =
      cub::BlockReduce<BestToken, kThreads>(s.scratch.best).Reduce(local, HeavierOp());
  if (threadIdx.x == 0) s.best = best;
  __syncthreads();
  const BestToken out = s.best;
  __syncthreads();
  return out;
}

// The chosen token's logprob and the n most likely tokens, over the adjusted logits.
__device__ void write_logprobs(SharedState& s, const RowContext& row, int32_t n, float max_logit,
                               RowSample& out) {
  double local = 0.0;
  for (int32_t i = threadIdx.x; i < row.vocab; i += kThreads) {
    local += exp(static_cast<double>(row.logits[i]) - max_logit);
  }
  const double sum = cub::BlockReduce<double, kThreads>(s.scratch.double_sum).Sum(local);
  if (threadIdx.x == 0) s.double_value = static_cast<double>(max_logit) + log(sum);
  __syncthreads();
  const double log_z = s.double_value;
  __syncthreads();
  out.logprob = static_cast<float>(static_cast<double>(row.logits[out.token]) - log_z);
  BestToken previous{INFINITY, -1};
  for (int32_t j = 0; j < n; ++j) {
    BestToken candidate{-INFINITY, INT_MAX};
    for (int32_t i = threadIdx.x; i < row.vocab; i += kThreads) {
      const float v = row.logits[i];
      const bool lighter = v < previous.value || (v == previous.value && i > previous.id);
      if (lighter && (v > candidate.value || candidate.id == INT_MAX)) candidate = {v, i};
    }
    previous = block_best(s, candidate);
    if (previous.id == INT_MAX) break;
    out.top_ids[j] = previous.id;
    out.top_logprobs[j] = static_cast<float>(static_cast<double>(previous.value) - log_z);
    out.n_top = j + 1;
  }
}

__global__ void __launch_bounds__(kThreads)
    sample_rows_kernel(float* logits, int32_t vocab, const RowSamplingParams* params,
                       const LogitAdjustment* adjustments, RowSample* out) {
  __shared__ SharedState s;
  const RowSamplingParams p = params[blockIdx.x];
  RowContext row;
  row.logits = logits + static_cast<size_t>(blockIdx.x) * static_cast<size_t>(vocab);
  row.vocab = vocab;
  const int32_t chunk = (vocab + kThreads - 1) / kThreads;
  row.begin = min(vocab, static_cast<int32_t>(threadIdx.x) * chunk);
  row.end = min(vocab, row.begin + chunk);

  const bool repetition = p.repetition_penalty != 1.0f;
  for (int32_t e = p.adjust_begin + threadIdx.x; e < p.adjust_end; e += kThreads) {
    const LogitAdjustment a = adjustments[e];
    if (a.token < 0 || a.token >= vocab) continue;
    // Explicit roundings: no fused multiply-add, so the result equals the host reference's.
    float v = __fadd_rn(row.logits[a.token], a.bias);
    if (repetition && a.seen != 0) {
      v = v > 0.0f ? __fdiv_rn(v, p.repetition_penalty) : __fmul_rn(v, p.repetition_penalty);
    }
    if (a.generated > 0) {
      v = __fsub_rn(v, __fadd_rn(__fmul_rn(static_cast<float>(a.generated), p.frequency_penalty),
                                 p.presence_penalty));
    }
    row.logits[a.token] = v;
  }
  __syncthreads();

  BestToken local{-INFINITY, INT_MAX};
  bool finite = true;
  for (int32_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float v = row.logits[i];
    finite = finite && isfinite(v);
    if (v > local.value || local.id == INT_MAX) local = {v, i};
  }
  const bool all_finite = __syncthreads_and(finite) != 0;
  BestToken best = block_best(s, local);
  if (best.id < 0 || best.id >= vocab) best.id = 0;
  row.max_logit = best.value;
  row.inv_temperature = p.temperature > 0.0f ? 1.0f / p.temperature : 0.0f;

  RowSample result;
  result.flags = all_finite ? 0 : kRowNonFiniteLogits;
  if (!all_finite || p.temperature == 0.0f) {
    result.token = best.id;
  } else {
    result.token = draw_token(s, row, p, best.id);
  }
  if (p.top_logprobs >= 0 && all_finite) {
    write_logprobs(s, row, min(p.top_logprobs, kMaxRowTopLogprobs), best.value, result);
  }
  if (threadIdx.x == 0) out[blockIdx.x] = result;
}

}  // namespace

void sample_rows(float* logits, int32_t rows, int32_t vocab, const RowSamplingParams* params,
                 const LogitAdjustment* adjustments, RowSample* out, cudaStream_t stream) {
  if (rows <= 0) return;
  sample_rows_kernel<<<rows, kThreads, 0, stream>>>(logits, vocab, params, adjustments, out);
  check_launch("sample_rows");
}

}  // namespace autoglm::cuda
