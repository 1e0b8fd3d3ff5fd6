// See sampling.h. First a pre-scan, many 256-thread blocks per logits row, each over one chunk
// of 4,096 logits: it applies the row's adjustments that fall in its chunk and writes the
// chunk's best token and whether its logits are finite. Then one 1024-thread block per row, in
// passes over the row (which stays in L2): the best token of the chunk bests (all a greedy row
// needs), then for sampled rows an exact top-k and top-p selection by radix
// select over the order-preserving bit pattern of the logits (four 8-bit digit passes), min-p,
// and the draw. No sort: the selected set is "every token above a threshold key, plus the
// lowest-id ties at the key", exactly the set row_sampler.cpp's sorted prefix keeps. Masses
// are summed in 2^-40 fixed point (the top token weighs 1), so sums are exact in any order.
// Every pass is coalesced: warp w reads its own contiguous segment of the row, 32 consecutive
// tokens per step. Steps that need token-id order (the draw, the n-th tie) take per-warp
// totals in one pass, then one warp walks the segment that holds the answer. The passes that
// need no id order across threads (max/argmax, the logprobs) read float4s over the whole block.
// Thread ownership: launched by the engine thread on the backend's stream.
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include <cooperative_groups/scan.h>
#include <cub/block/block_reduce.cuh>

#include <climits>
#include <cstdint>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/sampling.h"
#include "core/error.h"

namespace autoglm::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = 8;
constexpr int kLaneHistogramBytes =
    256 * 32 * sizeof(unsigned long long);  // dynamic smem                     // warp steps whose
                                            // loads are in flight together
constexpr double kFixedOne = 1099511627776.0;  // 2^40: weights in [0, 1] as integers
using Fixed = unsigned long long;

// Larger floats map to larger unsigned keys (negative floats reversed), so thresholds on
// logits become thresholds on integers that can be selected digit by digit.
__device__ __forceinline__ uint32_t order_key(float value) {
  const uint32_t bits = __float_as_uint(value);
  return (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) != 0 ? (key & 0x7fffffffu) : ~key);
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
  int32_t segment;             // tokens per warp segment (a multiple of 32)
  int32_t seg_begin, seg_end;  // this warp's segment
  int32_t lane, warp;
};

// Calls visit(logit, id) for each of this thread's tokens of the row, in increasing id order
// (so a strict `>` over the visits keeps the lowest id). After at most three logits up to a
// 16-byte boundary the row is read as float4s, kScanUnroll of them in flight per thread before
// any is used: a 151,552-logit row is 37 float4 per thread, ~10 round trips instead of 148
// dependent 4-byte loads. (One block streaming 0.6 MB is bound by what one SM can pull, so the
// max/argmax pass, the one every row takes, is split over blocks: the pre-scan.)
constexpr int kScanUnroll = 4;

template <typename Visit>
__device__ __forceinline__ void for_each_logit(const RowContext& row, Visit&& visit) {
  const int32_t tid = static_cast<int32_t>(threadIdx.x);
  const auto misalignment = static_cast<int32_t>(reinterpret_cast<uintptr_t>(row.logits) % 16);
  const int32_t head = min(row.vocab, (16 - misalignment) % 16 / 4);  // logits are 4-aligned
  if (tid < head) visit(row.logits[tid], tid);
  const int32_t quads = (row.vocab - head) / 4;
  const float4* row4 = reinterpret_cast<const float4*>(row.logits + head);
  for (int32_t base = tid; base < quads; base += kThreads * kScanUnroll) {
    float4 q[kScanUnroll];
#pragma unroll
    for (int u = 0; u < kScanUnroll; ++u) {
      const int32_t j = base + u * kThreads;
      q[u] = j < quads ? row4[j] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
#pragma unroll
    for (int u = 0; u < kScanUnroll; ++u) {
      const int32_t j = base + u * kThreads;
      if (j >= quads) break;
      const int32_t i = head + 4 * j;
      visit(q[u].x, i);
      visit(q[u].y, i + 1);
      visit(q[u].z, i + 2);
      visit(q[u].w, i + 3);
    }
  }
  for (int32_t i = head + 4 * quads + tid; i < row.vocab; i += kThreads) visit(row.logits[i], i);
}

__device__ __forceinline__ float weight_of(const RowContext& row, float logit) {
  return expf((logit - row.max_logit) * row.inv_temperature);
}
__device__ __forceinline__ Fixed to_fixed(float weight) {
  return static_cast<Fixed>(static_cast<double>(weight) * kFixedOne);
}

union SharedScratch {
  cub::BlockReduce<BestToken, kThreads>::TempStorage best;
  cub::BlockReduce<double, kThreads>::TempStorage double_sum;
};

struct SharedState {
  SharedScratch scratch;
  Fixed histogram[256];
  Fixed warp_total[kWarps];
  Fixed fixed_value;
  BestToken best;
  Fixed tie_value;  // select_key's count/mass at the selected key
  uint32_t prefix;
  int32_t id;
  int32_t warp;
  double double_value;
};

// Sums one value per warp into s.warp_total (thread-block wide: every thread calls it).
__device__ void warp_totals(SharedState& s, const RowContext& row, Fixed local) {
  const Fixed total =
      cg::reduce(cg::tiled_partition<32>(cg::this_thread_block()), local, cg::plus<Fixed>());
  if (row.lane == 0) s.warp_total[row.warp] = total;
  __syncthreads();
}

// Given per-warp totals, finds the warp whose segment holds the position `target` (0-based,
// in the running total over warps in id order): writes s.warp and s.fixed_value (the total
// before that warp), or warp -1 when target is past the end.
__device__ void locate_warp(SharedState& s, Fixed target) {
  if (threadIdx.x == 0) {
    Fixed before = 0;
    int found = -1;
    for (int w = 0; w < kWarps; ++w) {
      if (target < before + s.warp_total[w]) {
        found = w;
        break;
      }
      before += s.warp_total[w];
    }
    s.warp = found;
    s.fixed_value = before;
  }
  __syncthreads();
}

// The id of the `n`-th (1-based) token in id order that is in `prior` with key exactly `key`;
// INT_MAX when there are fewer. Gives the id bound of a selection's ties.
__device__ int32_t nth_tie_id(SharedState& s, const RowContext& row, Selection prior, uint32_t key,
                              Fixed n) {
  const auto is_tie = [&](int32_t i) {
    if (i >= row.seg_end) return false;
    const uint32_t k = order_key(row.logits[i]);
    return k == key && prior.keeps(k, i);
  };
  Fixed local = 0;
  for (int32_t i = row.seg_begin + row.lane; i < row.seg_end; i += 32) local += is_tie(i) ? 1 : 0;
  warp_totals(s, row, local);
  locate_warp(s, n - 1);
  int32_t found = INT_MAX;
  if (row.warp == s.warp) {
    Fixed count = s.fixed_value;
    for (int32_t base = row.seg_begin; base < row.seg_end; base += 32) {
      const unsigned ballot = __ballot_sync(0xffffffffu, is_tie(base + row.lane));
      const Fixed here = static_cast<Fixed>(__popc(ballot));
      if (count + here >= n) {
        unsigned bits = ballot;
        for (Fixed skip = n - count - 1; skip > 0; --skip) bits &= bits - 1;  // drop lowest
        found = base + __ffs(bits) - 1;
        break;
      }
      count += here;
    }
  }
  if (row.warp == s.warp && row.lane == 0) s.id = found;
  __syncthreads();
  const int32_t out = s.warp < 0 ? INT_MAX : s.id;
  __syncthreads();
  return out;
}

// Radix select within `prior`: the largest key K such that the tokens with key >= K reach
// `target`, counted (by_mass false: 1 each) or weighed (by_mass: fixed-point weights).
// Returns K; writes the count/mass strictly above K to *above and at K to *at.
__device__ uint32_t select_key(SharedState& s, Fixed* lane_histogram, const RowContext& row,
                               Selection prior, bool by_mass, Fixed target, Fixed* above,
                               Fixed* at) {
  uint32_t prefix = 0, mask = 0;
  Fixed above_sum = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256 * 32; b += kThreads) lane_histogram[b] = 0;
    __syncthreads();
    // kUnroll steps' loads are in flight together. Each lane adds into its own copy of the
    // histogram (lane_histogram[digit][lane]): lanes of a warp never contend, where a shared
    // histogram would serialise a warp whose tokens share the top digits.
    for (int32_t base = row.seg_begin; base < row.seg_end; base += 32 * kUnroll) {
      float logit[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int32_t i = base + u * 32 + row.lane;
        logit[u] = i < row.seg_end ? row.logits[i] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int32_t i = base + u * 32 + row.lane;
        const uint32_t k = order_key(logit[u]);
        if (i < row.seg_end && (k & mask) == prefix && prior.keeps(k, i)) {
          const Fixed value = by_mass ? to_fixed(weight_of(row, logit[u])) : 1;
          atomicAdd(&lane_histogram[((k >> shift) & 255u) * 32 + row.lane], value);
        }
      }
    }
    __syncthreads();
    for (int b = threadIdx.x; b < 256; b += kThreads) {
      Fixed total = 0;
      for (int lane = 0; lane < 32; ++lane) total += lane_histogram[b * 32 + lane];
      s.histogram[b] = total;
    }
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
      if (shift == 0) s.tie_value = s.histogram[b];
    }
    __syncthreads();
    prefix = s.prefix;
    above_sum = s.fixed_value;
    mask |= 255u << shift;
    __syncthreads();
  }
  *above = above_sum;
  *at = s.tie_value;
  __syncthreads();
  return prefix;
}

__device__ Fixed block_sum(SharedState& s, const RowContext& row, Fixed local) {
  warp_totals(s, row, local);
  if (threadIdx.x == 0) {
    Fixed total = 0;
    for (int w = 0; w < kWarps; ++w) total += s.warp_total[w];
    s.fixed_value = total;
  }
  __syncthreads();
  const Fixed out = s.fixed_value;
  __syncthreads();
  return out;
}

__device__ Fixed selected_mass(SharedState& s, const RowContext& row, Selection a) {
  Fixed local = 0;
  for (int32_t i = row.seg_begin + row.lane; i < row.seg_end; i += 32) {
    const float logit = row.logits[i];
    if (a.keeps(order_key(logit), i)) local += to_fixed(weight_of(row, logit));
  }
  return block_sum(s, row, local);
}

// A selection of the `needed` first ties (in id order) at `key` within `prior`, given how many
// (count mode) or how much mass (weight > 0) sits at the key: no pass when all ties are in.
__device__ Selection with_ties(SharedState& s, const RowContext& row, Selection prior, uint32_t key,
                               Fixed needed, Fixed at, Fixed weight) {
  Selection out;
  out.key = key;
  const Fixed ties = weight > 0 ? at / weight : at;
  if (needed < ties) {
    const int32_t nth = nth_tie_id(s, row, prior, key, needed);
    out.id_bound = nth == INT_MAX ? INT_MAX : nth + 1;
  }
  return out;
}

// Temperature sampling with top-k, top-p and min-p, then the draw in id order.
__device__ int32_t draw_token(SharedState& s, Fixed* lane_histogram, const RowContext& row,
                              const RowSamplingParams& p, int32_t argmax) {
  const Selection all;
  Selection top_k;
  if (p.top_k > 0 && p.top_k < row.vocab) {
    Fixed above = 0, at = 0;
    const Fixed k = static_cast<Fixed>(p.top_k);
    const uint32_t key = select_key(s, lane_histogram, row, all, false, k, &above, &at);
    top_k = with_ties(s, row, all, key, k - above, at, 0);
  }
  Selection top_p;
  if (p.top_p < 1.0f) {
    const Fixed total = selected_mass(s, row, top_k);
    Fixed target = static_cast<Fixed>(static_cast<double>(p.top_p) * static_cast<double>(total));
    if (target == 0) target = 1;
    Fixed above = 0, at = 0;
    const uint32_t key = select_key(s, lane_histogram, row, top_k, true, target, &above, &at);
    // Ties at the key join in id order while the mass before them is still short of target.
    const Fixed w = to_fixed(weight_of(row, key_value(key)));
    const Fixed needed = w == 0 ? ULLONG_MAX : (target > above ? (target - above + w - 1) / w : 1);
    top_p = w == 0 ? Selection{key, INT_MAX} : with_ties(s, row, top_k, key, needed, at, w);
  }
  const float min_weight = p.min_p;
  const auto kept_weight = [&](int32_t i) -> Fixed {
    if (i >= row.seg_end) return 0;
    const float logit = row.logits[i];
    const uint32_t k = order_key(logit);
    if (!top_k.keeps(k, i) || !top_p.keeps(k, i)) return 0;
    const float w = weight_of(row, logit);
    if (w < min_weight && i != argmax) return 0;
    return to_fixed(w);
  };
  Fixed local = 0;
  for (int32_t i = row.seg_begin + row.lane; i < row.seg_end; i += 32) local += kept_weight(i);
  warp_totals(s, row, local);
  if (threadIdx.x == 0) {
    Fixed kept_mass = 0;
    for (int w = 0; w < kWarps; ++w) kept_mass += s.warp_total[w];
    s.fixed_value = static_cast<Fixed>(p.uniform * static_cast<double>(kept_mass));
  }
  __syncthreads();
  const Fixed r = s.fixed_value;
  __syncthreads();
  // The first token whose running kept mass (in id order) exceeds r: the warp that holds it
  // walks its segment 32 tokens at a time with a warp-wide inclusive scan.
  locate_warp(s, r);
  if (row.warp == s.warp) {
    const auto warp = cg::tiled_partition<32>(cg::this_thread_block());
    Fixed before = s.fixed_value;
    int32_t found = INT_MAX;
    for (int32_t base = row.seg_begin; base < row.seg_end && found == INT_MAX;
         base += 32 * kUnroll) {
      Fixed weight[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) weight[u] = kept_weight(base + u * 32 + row.lane);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const Fixed inclusive = cg::inclusive_scan(warp, weight[u]);
        const unsigned past = __ballot_sync(0xffffffffu, r < before + inclusive);
        if (found == INT_MAX && past != 0) found = base + u * 32 + __ffs(past) - 1;
        before += warp.shfl(inclusive, 31);
      }
    }
    if (row.lane == 0) s.id = found;
  }
  __syncthreads();
  const int32_t token = s.warp < 0 ? INT_MAX : s.id;
  __syncthreads();
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
  // Terms <= 1: float is exact enough.
  for_each_logit(row, [&](float v, int32_t) { local += static_cast<double>(expf(v - max_logit)); });
  const double sum = cub::BlockReduce<double, kThreads>(s.scratch.double_sum).Sum(local);
  if (threadIdx.x == 0) s.double_value = static_cast<double>(max_logit) + log(sum);
  __syncthreads();
  const double log_z = s.double_value;
  __syncthreads();
  out.logprob = static_cast<float>(static_cast<double>(row.logits[out.token]) - log_z);
  BestToken previous{INFINITY, -1};
  for (int32_t j = 0; j < n; ++j) {
    BestToken candidate{-INFINITY, INT_MAX};
    for_each_logit(row, [&](float v, int32_t i) {
      const bool lighter = v < previous.value || (v == previous.value && i > previous.id);
      if (lighter && (v > candidate.value || candidate.id == INT_MAX)) candidate = {v, i};
    });
    previous = block_best(s, candidate);
    if (previous.id == INT_MAX) break;
    out.top_ids[j] = previous.id;
    out.top_logprobs[j] = static_cast<float>(static_cast<double>(previous.value) - log_z);
    out.n_top = j + 1;
  }
}

// The pre-scan: block (c, r) owns logits [c * kScanChunk, (c + 1) * kScanChunk) of row r.
constexpr int kScanThreads = 256;
constexpr int kScanPerThread = 16;  // loads in flight per thread, all issued before any is used
constexpr int32_t kScanChunk = kScanThreads * kScanPerThread;

struct ChunkBest {
  BestToken best;  // highest logit, then lowest id; id INT_MAX for an empty chunk
  int32_t finite;  // every logit of the chunk finite
};

__host__ __device__ int32_t scan_chunks(int32_t vocab) {
  return (vocab + kScanChunk - 1) / kScanChunk;
}

__global__ void __launch_bounds__(kScanThreads)
    adjust_and_scan_kernel(float* logits, int32_t vocab, const RowSamplingParams* params,
                           const LogitAdjustment* adjustments, ChunkBest* chunk_best) {
  wait_for_previous_kernel();
  const int32_t begin = static_cast<int32_t>(blockIdx.x) * kScanChunk;
  const int32_t end = min(vocab, begin + kScanChunk);
  float* row = logits + static_cast<size_t>(blockIdx.y) * static_cast<size_t>(vocab);
  const RowSamplingParams p = params[blockIdx.y];
  const bool repetition = p.repetition_penalty != 1.0f;
  for (int32_t e = p.adjust_begin + threadIdx.x; e < p.adjust_end; e += kScanThreads) {
    const LogitAdjustment a = adjustments[e];
    if (a.token < begin || a.token >= end) continue;  // another chunk's, or out of the vocab
    // Explicit roundings: no fused multiply-add, so the result equals the host reference's.
    float v = __fadd_rn(row[a.token], a.bias);
    if (repetition && a.seen != 0) {
      v = v > 0.0f ? __fdiv_rn(v, p.repetition_penalty) : __fmul_rn(v, p.repetition_penalty);
    }
    if (a.generated > 0) {
      v = __fsub_rn(v, __fadd_rn(__fmul_rn(static_cast<float>(a.generated), p.frequency_penalty),
                                 p.presence_penalty));
    }
    row[a.token] = v;
  }
  __syncthreads();
  float v[kScanPerThread];
#pragma unroll
  for (int u = 0; u < kScanPerThread; ++u) {
    const int32_t i = begin + static_cast<int32_t>(threadIdx.x) + u * kScanThreads;
    v[u] = i < end ? row[i] : 0.0f;
  }
  // In increasing id order, so a strict `>` keeps the lowest id.
  BestToken best{-INFINITY, INT_MAX};
  bool finite = true;
#pragma unroll
  for (int u = 0; u < kScanPerThread; ++u) {
    const int32_t i = begin + static_cast<int32_t>(threadIdx.x) + u * kScanThreads;
    if (i >= end) break;
    finite = finite && isfinite(v[u]);
    if (v[u] > best.value || best.id == INT_MAX) best = {v[u], i};
  }
  __shared__ cub::BlockReduce<BestToken, kScanThreads>::TempStorage scratch;
  const bool all_finite = __syncthreads_and(finite) != 0;
  best = cub::BlockReduce<BestToken, kScanThreads>(scratch).Reduce(best, HeavierOp());
  if (threadIdx.x == 0) {
    chunk_best[static_cast<size_t>(blockIdx.y) * gridDim.x + blockIdx.x] = {best,
                                                                            all_finite ? 1 : 0};
  }
}

__global__ void __launch_bounds__(kThreads)
    sample_rows_kernel(float* logits, int32_t vocab, const RowSamplingParams* params,
                       const ChunkBest* chunk_best, RowSample* out, HostSamples host) {
  wait_for_previous_kernel();
  __shared__ SharedState s;
  extern __shared__ Fixed lane_histogram[];  // [256 digits][32 lanes], kLaneHistogramBytes
  const RowSamplingParams p = params[blockIdx.x];
  RowContext row;
  row.logits = logits + static_cast<size_t>(blockIdx.x) * static_cast<size_t>(vocab);
  row.vocab = vocab;
  row.segment = ((vocab + kWarps - 1) / kWarps + 31) / 32 * 32;
  row.warp = static_cast<int32_t>(threadIdx.x) / 32;
  row.lane = static_cast<int32_t>(threadIdx.x) % 32;
  row.seg_begin = min(vocab, row.warp * row.segment);
  row.seg_end = min(vocab, row.seg_begin + row.segment);

  // The row's logits were adjusted by the pre-scan; its chunk bests give the max and argmax.
  const int32_t chunks = scan_chunks(vocab);
  BestToken local{-INFINITY, INT_MAX};
  bool finite = true;
  for (int32_t c = threadIdx.x; c < chunks; c += kThreads) {
    const ChunkBest b = chunk_best[static_cast<size_t>(blockIdx.x) * chunks + c];
    local = HeavierOp()(local, b.best);
    finite = finite && b.finite != 0;
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
    result.token = draw_token(s, lane_histogram, row, p, best.id);
  }
  if (p.top_logprobs >= 0 && all_finite) {
    write_logprobs(s, row, min(p.top_logprobs, kMaxRowTopLogprobs), best.value, result);
  }
  if (threadIdx.x == 0) {
    out[blockIdx.x] = result;
    if (host.rows != nullptr) host.rows[int64_t{*host.slot} * host.stride + blockIdx.x] = result;
  }
}

}  // namespace

size_t sample_scan_bytes(int32_t rows, int32_t vocab) {
  return rows <= 0 || vocab <= 0 ? 0
                                 : static_cast<size_t>(rows) *
                                       static_cast<size_t>(scan_chunks(vocab)) * sizeof(ChunkBest);
}

void sample_rows(float* logits, int32_t rows, int32_t vocab, const RowSamplingParams* params,
                 const LogitAdjustment* adjustments, RowSample* out, void* scan,
                 cudaStream_t stream, HostSamples host) {
  if (rows <= 0) return;
  if (vocab <= 0) {
    fail(ErrorCode::kInvalidArgument, "CUDA sample_rows: vocab " + std::to_string(vocab));
  }
  ChunkBest* chunk_best = static_cast<ChunkBest*>(scan);
  const int32_t chunks = scan_chunks(vocab);
  constexpr int32_t kMaxGridY = 65535;  // rows per pre-scan launch
  for (int32_t r0 = 0; r0 < rows; r0 += kMaxGridY) {
    const int32_t n = rows - r0 < kMaxGridY ? rows - r0 : kMaxGridY;
    launch_dependent("sample_rows", adjust_and_scan_kernel,
                     dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(n)), kScanThreads, 0,
                     stream, logits + static_cast<size_t>(r0) * static_cast<size_t>(vocab), vocab,
                     params + r0, adjustments,
                     chunk_best + static_cast<size_t>(r0) * static_cast<size_t>(chunks));
    check_launch("sample_rows");
  }
  // Over the 48 KB default: opt in once per process (and device; cheap when repeated).
  AUTOGLM_CUDA_CHECK(cudaFuncSetAttribute(
      sample_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kLaneHistogramBytes));
  launch_dependent("sample_rows", sample_rows_kernel, rows, kThreads, kLaneHistogramBytes, stream,
                   logits, vocab, params, chunk_best, out, host);
  check_launch("sample_rows");
}

}  // namespace autoglm::cuda
