// The tiled paged-attention kernel behind paged_attention (attention.cu), FlashAttention-2
// style on the tensor cores' mma.sync (m16n8k16, fp32 accumulation). One CTA owns a tile of
// "rows" = (query token, query head) pairs of one sequence that share one KV head (GQA packing:
// row r is token r / group, head kv_head * group + r % group), and one slice of that sequence's
// keys. Key tiles of kKeyTile keys are copied through the block table into shared memory with
// cp.async, two or three tiles in flight, so the next tiles stream in while one is computed.
// Each warp owns 16 or 32 rows and a share of each key tile: with 128 rows (prefill) every warp
// scores all keys of the tile for its 32 rows (16 with 64-row tiles, for prefill grids too small
// to fill the GPU); with 16 rows (decode: one token, up to 16 heads) the four warps take a
// quarter of the tile each and merge their softmax states at the end.
// Scores, probabilities and the output accumulator stay in registers; the online softmax runs on
// exp2 in fp32. With one split the kernel writes the normalised output; with several
// (flash-decoding) it writes unnormalised partials that combine_splits_kernel merges.
// Thread ownership: device code, launched by the engine thread through attention.cu.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_types.cuh"
#include "backend/cuda/element_convert.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/pdl.cuh"

namespace autoglm::cuda::attn {

constexpr int kThreads = 128;  // four warps per CTA
constexpr int kWarps = kThreads / 32;
constexpr int kKeyTile = 64;           // keys per shared-memory tile
constexpr int kDecodeRows = 16;        // rows per CTA when every sequence decodes one token
constexpr int kPrefillRows = 128;      // rows per CTA for prefill chunks and mixed batches
constexpr int kShortPrefillRows = 64;  // ... when 128-row CTAs would not fill the GPU

struct KernelParams {
  AttentionBatch batch;  // device pointers and host-side scalars, as the caller gave them
  const void* q = nullptr;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  void* out = nullptr;
  float* partial_acc = nullptr;       // [n_seqs * num_heads * splits][head_dim] when splits > 1
  float2* partial_ml = nullptr;       // [n_seqs * num_heads * splits] (max in log2 units, sum)
  const int32_t* seq_list = nullptr;  // grid.y indexes it (batch.prefill_seqs), else the batch
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t group = 0;        // num_heads / num_kv_heads
  float scale_log2 = 0.0f;  // scale * log2(e): the softmax runs on exp2
  int32_t row_tiles = 1;    // grid.z = row_tiles * splits
  int32_t splits = 1;
  int32_t split_len = 0;      // keys per split, a multiple of kKeyTile
  int32_t block_shift = -1;   // log2(block_size) when it is a power of two: no division per key
  bool late_trigger = false;  // allow_next_kernel() after the key loop (pdl.cuh)
  // One-token decode: the batch arrays and the keys older than the step are read before
  // waiting for the QKV kernel (see the kernel).
  bool kv_before_wait = false;
};

constexpr size_t align128(size_t bytes) {
  return (bytes + 127) / 128 * 128;
}

// How a CTA's warps share the work: kRowGroups groups of 16 * kMt rows, each key tile cut into
// kSlices slices, warp w taking row group w % kRowGroups and slice w / kRowGroups. Prefill
// tiles (128 rows) give each warp 32 rows, so that every K/V fragment read from shared memory
// feeds two mma row tiles; decode tiles (16 rows) give each warp a quarter of the keys.
template <int ROWS>
struct WarpSplit {
  static constexpr int kRowGroups = ROWS >= 16 * kWarps ? kWarps : ROWS / 16;
  static constexpr int kMt = ROWS / (16 * kRowGroups);  // 16-row mma tiles per warp
  static constexpr int kSlices = kWarps / kRowGroups;
  static constexpr int kSliceKeys = kKeyTile / kSlices;
  static_assert(ROWS == 16 * kMt * kRowGroups && kWarps % kRowGroups == 0, "rows per warp");
  static_assert(kSliceKeys % 16 == 0, "a slice is whole 16-key mma steps");
};

// Shared memory: Q rows, then kStages (K, V) tiles; rows padded by 16 bytes so that the eight
// row addresses of an ldmatrix fall in different banks. After the key loop the tile region is
// reused to merge the slices' softmax states (decode). With an FP8 pool (FP8 = true) Q is held
// in FP16 and a stage is a K tile of kKeyTile byte rows and a V tile transposed (HD rows of
// kKeyTile keys), as the pool stores V (attention.h).
template <typename T, int HD, int ROWS, bool FP8 = false>
struct Smem {
  // Decode CTAs are few at small batch and latency-bound: three tiles in flight cover a short
  // context in one memory round trip. Prefill keeps two, so that two CTAs fit on an SM. An FP8
  // decode CTA keeps two as well (four CTAs an SM, registers bounded: see
  // paged_attention_kernel); a third stage measured 1% slower (H200, batch 256 x 1,024-8,192).
  static constexpr int kStages = ROWS == kDecodeRows && !FP8 ? 3 : 2;
  using Elem = T;                                 // q's and out's element type
  using QT = std::conditional_t<FP8, __half, T>;  // Q's element type in shared memory
  static constexpr int kLd = HD + 8;              // elements per row of Q (and BF16/FP16 K, V)
  // FP8 decode tiles are unpadded, their 16-byte chunks swizzled instead (k_chunk_slot,
  // v_chunk_slot): 4-8% faster than padded rows (H200, batch 256 x 1,024-8,192 keys).
  static constexpr bool kDenseFp8 = FP8 && ROWS == kDecodeRows;
  static constexpr int kLdK8 = kDenseFp8 ? HD : HD + 16;              // bytes per FP8 key row
  static constexpr int kLdV8 = kDenseFp8 ? kKeyTile : kKeyTile + 16;  // ... per V row (a dim)
  static constexpr size_t k_tile = FP8 ? size_t{kKeyTile} * kLdK8 : sizeof(T) * kKeyTile * kLd;
  static constexpr size_t v_tile = FP8 ? size_t{HD} * kLdV8 : k_tile;
  static constexpr size_t stage = k_tile + v_tile;
  static constexpr size_t q = 0;
  static constexpr size_t kv = align128(sizeof(QT) * ROWS * kLd);
  static constexpr int kMergeLd = HD + 4;  // floats per merged row: float4-aligned, few conflicts
  static constexpr size_t merge_o = kv;    // [kWarps][16][kMergeLd] floats
  static constexpr size_t merge_ml = align128(merge_o + sizeof(float) * kWarps * 16 * kMergeLd);
  static constexpr size_t merge_end = merge_ml + sizeof(float2) * kWarps * 16;
  static constexpr size_t tiles_end = kv + kStages * stage;
  static constexpr size_t bytes = align128(tiles_end > merge_end ? tiles_end : merge_end);
  static_assert(k_tile % 16 == 0 && v_tile % 16 == 0, "cp.async destinations stay aligned");
  static constexpr bool kFp8 = FP8;
  static constexpr int kHeadDim = HD;
  // FP8 tiles: the byte offset of a K row's 16-dim chunk, and of a V row's (a dim's) 16-key run.
  __device__ static int k_at(int key, int chunk);
  __device__ static int v_at(int dim, int run);
};

// ---- PTX wrappers ---------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; src_bytes 0 fills the destination with zeros.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src),
               "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// 2^x on the MUFU unit alone, results below 2^-126 flushed to zero. exp2f is the same MUFU.EX2
// plus a range fix-up for those denormal results (a compare and two predicated multiplies,
// four instructions where one does); a probability or rescale factor under 2^-126 is zero to
// the softmax either way. 2^0 is exactly 1, 2^-inf is 0.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Two floats rounded to T and packed (lo at the lower address); the rounded values are returned
// so that the softmax denominator sums exactly what the numerator multiplies.
template <typename T>
__device__ __forceinline__ uint32_t pack_rounded(float& lo, float& hi) {
  const T a = from_f32<T>(lo);
  const T b = from_f32<T>(hi);
  lo = to_f32(a);
  hi = to_f32(b);
  return static_cast<uint32_t>(*reinterpret_cast<const uint16_t*>(&a)) |
         (static_cast<uint32_t>(*reinterpret_cast<const uint16_t*>(&b)) << 16);
}

// ---- tiles ------------------------------------------------------------------------------------

// The block-table index of a key (a shift when the block size is a power of two).
__device__ __forceinline__ int table_block(const KernelParams& p, int key) {
  return p.block_shift >= 0 ? key >> p.block_shift : key / p.batch.block_size;
}

// The K/V pool row of `key`, given the block-table entry of its block.
__device__ __forceinline__ int64_t kv_pool_row(const KernelParams& p, int32_t entry, int key) {
  return int64_t{entry} * p.batch.block_size + key - table_block(p, key) * p.batch.block_size;
}

// Block-table entries a thread needs for one tile's copies: the block of each key row it copies
// (BF16/FP16), or of each K row plus the one 16-key V run it copies (FP8).
template <int HD, bool FP8>
constexpr int kTileEntries = FP8 ? kKeyTile*(HD / 16) / kThreads + 1 : kKeyTile*(HD / 8) / kThreads;

// The entries of the tile at tile0 (0 past kend), all loaded before any copy is issued (the
// copies' asm, a memory clobber, would otherwise hold each load back behind the previous copy).
// Decode CTAs load them a tile ahead, so that the round trip overlaps a tile's compute instead
// of preceding its copies (FP8, batch 256 x 8,192 keys: 563 -> 539 us on an H200; BF16 level).
template <int HD, bool FP8, bool kDecode>
__device__ __forceinline__ void load_tile_entries(const KernelParams& p, int seq, int tile0,
                                                  int kend,
                                                  int32_t (&entry)[kTileEntries<HD, FP8>]) {
  constexpr int kChunks = FP8 ? HD / 16 : HD / 8;  // 16-byte chunks per key row
  constexpr int kRows = FP8 ? kTileEntries<HD, FP8> - 1 : kTileEntries<HD, FP8>;
  static_assert(kKeyTile * kChunks % kThreads == 0 && kThreads % kChunks == 0,
                "tile must split evenly over threads");
  const int32_t* blocks = p.batch.block_table + int64_t{seq} * p.batch.max_blocks_per_seq;
  if (kDecode && !FP8 && p.block_shift >= 0) {
    // BF16/FP16 decode CTAs and a power-of-two block size: one shift an entry and no branch; a
    // key at or past kend reads the last key's entry instead, which no copy uses (they copy keys
    // below kend only). H200: batch 8 x 1,024 keys 9.0-9.4 -> 8.6 us, 256 x 1,024 78.1 -> 77.0
    // us, the 9B batch-1 step 4.708 / 4.747 -> 4.673 / 4.674 ms. Not in prefill CTAs (it cost
    // them registers) nor FP8 decode CTAs (a 4-byte spill at their 128-register bound, and no
    // gain: 73.8 / 74.2 -> 74.3 us at 255 x 1,500 keys).
    const int last = kend - 1;  // >= 0: a CTA without keys returns before loading entries
    const int row_key = tile0 + static_cast<int>(threadIdx.x) / kChunks;
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      entry[j] = blocks[min(row_key + j * (kThreads / kChunks), last) >> p.block_shift];
    }
    return;
  }
#pragma unroll
  for (int j = 0; j < kRows; ++j) {
    const int key = tile0 + (threadIdx.x + j * kThreads) / kChunks;
    entry[j] = key < kend ? blocks[table_block(p, key)] : 0;
  }
  if constexpr (FP8) {
    const int key16 = tile0 + 16 * (threadIdx.x % (kKeyTile / 16));
    entry[kRows] = key16 < kend ? blocks[table_block(p, key16)] : 0;
  }
}

// Starts the copy of keys [tile0, tile0 + kKeyTile) of a sequence into k_s / v_s through the
// block-table entries of load_tile_entries; keys at or past `kend` become zeros so that no stale
// (possibly NaN) data meets a zero probability. Keys in [defer_from, kend) are left alone: the
// step's own keys, which a copy issued before the wait must not read (fill_deferred_keys copies
// them after it).
template <typename T, int HD>
__device__ __forceinline__ void fetch_kv_tile(const KernelParams& p, int kv_head, int tile0,
                                              int kend,
                                              const int32_t (&entry)[kTileEntries<HD, false>],
                                              T* k_s, T* v_s, int ld, int defer_from = INT32_MAX) {
  constexpr int kChunks = HD / 8;  // 16-byte chunks per key row
  constexpr int kPerThread = kTileEntries<HD, false>;
  const int64_t row_elems = int64_t{p.num_kv_heads} * HD;
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  const int chunk = threadIdx.x % kChunks;
  const int64_t head_off = int64_t{kv_head} * HD + chunk * 8;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int local = (threadIdx.x + j * kThreads) / kChunks;
    const int key = tile0 + local;
    int64_t off = 0;
    int bytes = 0;
    if (key < kend) {
      if (key >= defer_from) continue;
      off = kv_pool_row(p, entry[j], key) * row_elems + head_off;
      bytes = 16;
    }
    cp_async16(k_s + local * ld + chunk * 8, kc + off, bytes);
    cp_async16(v_s + local * ld + chunk * 8, vc + off, bytes);
  }
}

// fetch_kv_tile for a tile whose keys are all below kend and none deferred, in a pool whose
// block size is a power of two: the same copies, addresses from per-thread bases (see
// fetch_full_tile_fp8). K and V rows share their pool offsets; thread t copies rows
// r0 + j kThreads / kChunks (r0 = t / kChunks), one 16-byte chunk of each.
template <typename T, int HD>
__device__ __forceinline__ void fetch_full_tile(const KernelParams& p, int kv_head, int tile0,
                                                const int32_t (&entry)[kTileEntries<HD, false>],
                                                T* k_s, T* v_s, int ld) {
  constexpr int kChunks = HD / 8;
  constexpr int kRowStep = kThreads / kChunks;
  const uint32_t mask = static_cast<uint32_t>(p.batch.block_size) - 1;
  const uint32_t row_bytes = static_cast<uint32_t>(p.num_kv_heads) * HD * sizeof(T);
  const uint32_t block_bytes = row_bytes * static_cast<uint32_t>(p.batch.block_size);
  const int chunk = threadIdx.x % kChunks;
  const int row0 = threadIdx.x / kChunks;
  const uint32_t head_off = (static_cast<uint32_t>(tile0) & mask) * row_bytes +
                            static_cast<uint32_t>(kv_head * HD + chunk * 8) * sizeof(T);
  const unsigned char* kc = static_cast<const unsigned char*>(p.k_cache) + head_off;
  const unsigned char* vc = static_cast<const unsigned char*>(p.v_cache) + head_off;
  const int dst0 = row0 * ld + chunk * 8;
#pragma unroll
  for (int j = 0; j < kTileEntries<HD, false>; ++j) {
    const uint64_t off = static_cast<uint64_t>(static_cast<uint32_t>(entry[j])) * block_bytes +
                         (static_cast<uint32_t>(row0 + j * kRowStep) & mask) * row_bytes;
    cp_async16(k_s + dst0 + j * kRowStep * ld, kc + off, 16);
    cp_async16(v_s + dst0 + j * kRowStep * ld, vc + off, 16);
  }
}

// The keys in [from, kend) of the tile at tile0 that fetch_kv_tile deferred, copied with plain
// loads once the kernel that wrote them has completed (the caller's barrier publishes them).
template <typename T, int HD>
__device__ __forceinline__ void fill_deferred_keys(const KernelParams& p, int kv_head, int seq,
                                                   int tile0, int from, int kend, T* k_s, T* v_s,
                                                   int ld) {
  constexpr int kChunks = HD / 8;
  const int first = max(tile0, from);
  const int last = min(tile0 + kKeyTile, kend);
  const int32_t* blocks = p.batch.block_table + int64_t{seq} * p.batch.max_blocks_per_seq;
  const int64_t row_elems = int64_t{p.num_kv_heads} * HD;
  for (int i = threadIdx.x; i < (last - first) * kChunks; i += kThreads) {
    const int key = first + i / kChunks;
    const int chunk = i % kChunks;
    const int64_t off = kv_pool_row(p, blocks[table_block(p, key)], key) * row_elems +
                        int64_t{kv_head} * HD + chunk * 8;
    const int at = (key - tile0) * ld + chunk * 8;
    *reinterpret_cast<uint4*>(k_s + at) =
        *reinterpret_cast<const uint4*>(static_cast<const T*>(p.k_cache) + off);
    *reinterpret_cast<uint4*>(v_s + at) =
        *reinterpret_cast<const uint4*>(static_cast<const T*>(p.v_cache) + off);
  }
}

// ---- FP8 (E4M3) pool ------------------------------------------------------------------------
// The mma's B fragments want, per lane, two consecutive k-indices of one column. For Q K^T
// (k = dims) the dims within every 16 are permuted, in Q's shared-memory columns and in which K
// bytes a lane reads alike (a dot product does not care about order): lane c of a row group
// holds dims 4c..4c+3 of each 16, which the fragment calls k = 2c, 2c+1, 2c+8, 2c+9, so its four
// K values are one 4-byte load. For P V (k = keys) the keys within every 16 are permuted alike
// in the score columns and in the V bytes: lane c holds the probabilities of keys 4c..4c+3, and
// V is stored transposed (a dim's keys consecutive), so its four V values are one 4-byte load
// too. The MMAs run in FP16: E4M3 converts to it exactly, two values an instruction.

// Q's shared-memory column of dim d.
__device__ __forceinline__ int fp8_q_column(int d) {
  const int r = d & 15;
  const int c = r >> 2;
  const int e = r & 3;
  return (d & ~15) + (e < 2 ? 2 * c + e : 8 + 2 * c + e - 2);
}

// The key (within the warp's slice) that column `col` of score tile `n` holds.
__device__ __forceinline__ int fp8_key_of(int n, int col) {
  return 16 * (n / 2) + 4 * (col / 2) + 2 * (n % 2) + (col % 2);
}

// Where a K row's 16-dim chunk lies in shared memory. One 4-byte load instruction reads the same
// chunk of eight keys (0, 1, 4, 5, 8, 9, 12, 13 of a 16, plus 0 or 2). Padded rows (144 bytes)
// put those keys in four bank groups twice, so bit 3 of the key moves the chunk by two. Dense
// rows start in one bank (HD 128) or two (HD 64), so the key bits that differ among the eight
// pick eight (four) chunk slots: the 32 lanes read 32 different banks either way.
template <typename L>
__device__ __forceinline__ int k_chunk_slot(int key, int chunk) {
  if constexpr (!L::kDenseFp8) return chunk ^ (((key >> 3) & 1) << 1);
  static_assert(L::kHeadDim == 64 || L::kHeadDim == 128, "4 or 8 chunks a key row");
  return fp8_k_chunk_at(key, chunk, L::kHeadDim);  // the pool's own order (attention.h)
}

// Where a V row's (one dim's) 16-key chunk lies: a load instruction reads one chunk of eight
// consecutive dims; dense rows (64 bytes) put two dims in a 128-byte bank line, so the chunk is
// swizzled by the dim's line among the eight.
template <typename L>
__device__ __forceinline__ int v_chunk_slot(int dim, int chunk) {
  static_assert(kKeyTile == 64, "four 16-key chunks a V row");
  if constexpr (!L::kDenseFp8) return chunk;
  return chunk ^ ((dim >> 1) & 3);
}

template <typename T, int HD, int ROWS, bool FP8>
__device__ __forceinline__ int Smem<T, HD, ROWS, FP8>::k_at(int key, int chunk) {
  return key * kLdK8 + k_chunk_slot<Smem>(key, chunk) * 16;
}
template <typename T, int HD, int ROWS, bool FP8>
__device__ __forceinline__ int Smem<T, HD, ROWS, FP8>::v_at(int dim, int run) {
  return dim * kLdV8 + v_chunk_slot<Smem>(dim, run) * 16;
}

// Four E4M3 bytes as two FP16 pairs (bytes 0-1, then 2-3), exactly. The conversion reads the
// word's 16-bit halves directly; the intrinsic, given `w >> 16`, spent a shift on each high half
// (a sixteenth of the FP8 decode loop's instructions).
__device__ __forceinline__ void e4m3x4_to_f16x2x2(uint32_t w, uint32_t& lo, uint32_t& hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm("{\n\t.reg .b16 l, h;\n\tmov.b32 {l, h}, %2;\n\t"
      "cvt.rn.f16x2.e4m3x2 %0, l;\n\tcvt.rn.f16x2.e4m3x2 %1, h;\n\t}"
      : "=r"(lo), "=r"(hi)
      : "r"(w));
#else
  const auto pair = [](uint32_t two) {
    const __half2_raw h =
        __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two & 0xffffu), __NV_E4M3);
    return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);
  };
  lo = pair(w);
  hi = pair(w >> 16);
#endif
}

// fetch_kv_tile for the FP8 pool: K rows of HD bytes into k_s (kLdK8 a row, chunks swizzled),
// V's [dim][block_size] runs into vt_s ([HD][kLdV8], 16 keys a copy). Keys at or past kend
// are zeros (a partial 16-key run copies only its valid bytes, cp.async fills the rest).
template <typename L, int HD = L::kHeadDim>
__device__ __forceinline__ void fetch_kv_tile_fp8(const KernelParams& p, int kv_head, int tile0,
                                                  int kend,
                                                  const int32_t (&entry)[kTileEntries<HD, true>],
                                                  uint8_t* k_s, uint8_t* vt_s) {
  constexpr int LDK = L::kLdK8;
  constexpr int LDV = L::kLdV8;
  constexpr int kKChunks = HD / 16;                  // 16-byte chunks per key row
  constexpr int kKPer = kTileEntries<HD, true> - 1;  // key chunks per thread
  constexpr int kVRuns = kKeyTile / 16;              // 16-key runs per V row
  constexpr int kVPer = HD * kVRuns / kThreads;      // V runs per thread
  static_assert(kThreads % kKChunks == 0 && kThreads % kVRuns == 0, "a thread keeps its column");
  const uint8_t* kc = static_cast<const uint8_t*>(p.k_cache);
  const uint8_t* vc = static_cast<const uint8_t*>(p.v_cache);
  const int chunk = threadIdx.x % kKChunks;
  const int run = threadIdx.x % kVRuns;
  const int key16 = tile0 + 16 * run;
#pragma unroll
  for (int j = 0; j < kKPer; ++j) {
    const int local = (threadIdx.x + j * kThreads) / kKChunks;
    const int key = tile0 + local;
    int64_t off = 0;
    int bytes = 0;
    if (key < kend) {
      const int slot = key - table_block(p, key) * p.batch.block_size;
      off =
          fp8_k_offset(entry[j], kv_head, slot, chunk * 16, p.num_kv_heads, HD, p.batch.block_size);
      bytes = 16;
    }
    cp_async16(k_s + local * LDK + k_chunk_slot<L>(local, chunk) * 16, kc + off, bytes);
  }
  const int valid = min(16, kend - key16);
  int64_t v_off = 0;
  if (valid > 0) {
    const int64_t bs = p.batch.block_size;
    v_off = (int64_t{entry[kKPer]} * p.num_kv_heads + kv_head) * HD * bs + key16 -
            int64_t{table_block(p, key16)} * bs;
  }
#pragma unroll
  for (int j = 0; j < kVPer; ++j) {
    const int dim = (threadIdx.x + j * kThreads) / kVRuns;
    cp_async16(vt_s + dim * LDV + v_chunk_slot<L>(dim, run) * 16,
               vc + (valid > 0 ? v_off + int64_t{dim} * p.batch.block_size : 0),
               valid > 0 ? valid : 0);
  }
}

// fetch_kv_tile_fp8 for a tile whose keys are all below kend, in a pool whose block size is a
// power of two (16 or more, as FP8 pools are): the same copies, with addresses built from
// per-thread bases, one wide multiply-add and constant offsets (the general path's per-copy
// pool-row arithmetic was about half of the FP8 decode kernel's instructions). Tiles start at
// multiples of kKeyTile, so a key's row in its block is the tile's row in the block (0 unless
// a block holds several tiles) plus the key's tile row masked to the block; thread t copies K
// rows r0 + j kThreads / kKChunks (r0 = t / kKChunks), all with the same chunk swizzle, and V
// dims t / kVRuns + j kThreads / kVRuns of one 16-key run.
template <typename L, int HD = L::kHeadDim>
__device__ __forceinline__ void fetch_full_tile_fp8(const KernelParams& p, int kv_head, int tile0,
                                                    const int32_t (&entry)[kTileEntries<HD, true>],
                                                    uint8_t* k_s, uint8_t* vt_s) {
  constexpr int LDK = L::kLdK8;
  constexpr int LDV = L::kLdV8;
  constexpr int kKChunks = HD / 16;
  constexpr int kKPer = kTileEntries<HD, true> - 1;
  constexpr int kKRowStep = kThreads / kKChunks;  // K rows between a thread's copies
  constexpr int kVRuns = kKeyTile / 16;
  constexpr int kVPer = HD * kVRuns / kThreads;
  constexpr int kVDimStep = kThreads / kVRuns;  // V dims between a thread's copies
  static_assert(kKRowStep % 16 == 0 && kVDimStep % 8 == 0, "a thread's rows share a swizzle");
  const uint32_t bs = static_cast<uint32_t>(p.batch.block_size);
  const uint32_t mask = bs - 1;
  const uint32_t block_bytes = static_cast<uint32_t>(p.num_kv_heads) * HD * bs;  // of K, of V
  const int chunk = threadIdx.x % kKChunks;
  const int row0 = threadIdx.x / kKChunks;
  // A thread's rows are 16 apart, so they share the low slot bits that permute K's chunks.
  const uint8_t* k_src = static_cast<const uint8_t*>(p.k_cache) + kv_head * HD * bs +
                         fp8_k_chunk_at(row0, chunk, HD) * 16;
  uint8_t* k_dst = k_s + row0 * LDK + k_chunk_slot<L>(row0, chunk) * 16;
#pragma unroll
  for (int j = 0; j < kKPer; ++j) {
    const uint32_t in_block = ((static_cast<uint32_t>(tile0 + row0 + j * kKRowStep)) & mask) * HD;
    cp_async16(
        k_dst + j * kKRowStep * LDK,
        k_src + static_cast<uint64_t>(static_cast<uint32_t>(entry[j])) * block_bytes + in_block,
        16);
  }
  const int run = threadIdx.x % kVRuns;
  const int dim0 = threadIdx.x / kVRuns;
  const uint8_t* v_src = static_cast<const uint8_t*>(p.v_cache) +
                         static_cast<uint64_t>(static_cast<uint32_t>(entry[kKPer])) * block_bytes +
                         (static_cast<uint32_t>(kv_head) * HD + dim0) * bs +
                         ((static_cast<uint32_t>(tile0) + 16 * run) & mask);
  uint8_t* v_dst = vt_s + dim0 * LDV + v_chunk_slot<L>(dim0, run) * 16;
#pragma unroll
  for (int j = 0; j < kVPer; ++j) {
    cp_async16(v_dst + j * kVDimStep * LDV, v_src + j * kVDimStep * bs, 16);
  }
}

// Per-thread state of one warp's 16 * MT rows. Row slot h is mma row tile h / 2, and within it
// row lane / 4 + 8 * (h % 2); for each 8-wide column tile the thread holds columns
// 2 * (lane % 4) and + 1 (the mma accumulator layout).
template <int HD, int MT>
struct RowState {
  float o[MT][HD / 8][4] = {};  // output accumulator, [row tile][column tile][c0..c3]
  float m[2 * MT];
  float l[2 * MT];    // this thread's share of the row sums (reduced at the end)
  int limit[2 * MT];  // keys below limit are visible to the row
};

// Q's A fragments of one 16-row tile, all head dims: a decode warp (MT = 1) loads them once and
// keeps them in registers instead of reloading them from shared memory every key tile.
template <int HD>
struct HeldQ {
  uint32_t f[HD / 16][4];
};

template <int HD, typename QT>
__device__ __forceinline__ void load_held_q(const QT* q_s, int ld, HeldQ<HD>& q) {
  const int lane = threadIdx.x % 32;
  const int r = (lane % 8) + ((lane / 8) % 2) * 8;
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk)
    ldmatrix_x4(q.f[kk], q_s + r * ld + kk * 16 + (lane / 16) * 8);
}

// Scores of the warp's rows (Q at q_s, or held in registers at MT = 1) against keys [key0,
// key0 + NKEYS) of the tile in k_s, masked, turned into probabilities (online softmax), and
// accumulated into st.o against v_s. L is the CTA's Smem layout (element type, head size,
// BF16/FP16 or FP8 tiles); the slice's keys start at row slice0 of the tile.
template <typename L, int NKEYS, int MT>
__device__ __forceinline__ void warp_tile(const typename L::QT* q_s, const HeldQ<L::kHeadDim>& held,
                                          const unsigned char* k_s, const unsigned char* v_s,
                                          int slice0, int key0, float scale_log2,
                                          RowState<L::kHeadDim, MT>& st) {
  using C = typename L::QT;  // the mma's input type
  constexpr int HD = L::kHeadDim;
  constexpr int ld = L::kLd;
  constexpr int kNt = NKEYS / 8;
  const int lane = threadIdx.x % 32;
  float s[MT][kNt][4];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int n = 0; n < kNt; ++n) s[m][n][0] = s[m][n][1] = s[m][n][2] = s[m][n][3] = 0.0f;
  }
  // S = Q K^T: K rows are keys, so a plain ldmatrix gives the column-major B fragment (FP8: each
  // lane's four bytes of its key, see fp8_q_column).
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk) {
    uint32_t qf[MT][4];
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if constexpr (MT == 1) {
#pragma unroll
        for (int i = 0; i < 4; ++i) qf[m][i] = held.f[kk][i];
      } else {
        const int r = m * 16 + (lane % 8) + ((lane / 8) % 2) * 8;
        ldmatrix_x4(qf[m], q_s + r * ld + kk * 16 + (lane / 16) * 8);
      }
    }
    if constexpr (L::kFp8) {
#pragma unroll
      for (int n = 0; n < kNt; ++n) {
        const int key = slice0 + fp8_key_of(n, lane / 4);
        const uint32_t w =
            *reinterpret_cast<const uint32_t*>(k_s + L::k_at(key, kk) + 4 * (lane % 4));
        uint32_t b0, b1;
        e4m3x4_to_f16x2x2(w, b0, b1);
#pragma unroll
        for (int m = 0; m < MT; ++m) mma16816<C>(s[m][n], qf[m], b0, b1);
      }
    } else {
      const C* k_t = reinterpret_cast<const C*>(k_s);
#pragma unroll
      for (int n = 0; n < kNt; n += 2) {
        uint32_t b[4];
        const int key = slice0 + n * 8 + (lane % 8) + (lane / 16) * 8;
        ldmatrix_x4(b, k_t + key * ld + kk * 16 + ((lane / 8) % 2) * 8);
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          mma16816<C>(s[m][n], qf[m], b[0], b[1]);
          mma16816<C>(s[m][n + 1], qf[m], b[2], b[3]);
        }
      }
    }
  }
  // Mask, row maxima (the four lanes of a row exchange theirs), rescale.
  float use[2 * MT];
  float alpha[2 * MT];
  bool rescale = false;
#pragma unroll
  for (int h = 0; h < 2 * MT; ++h) {
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < kNt; ++n) {
#pragma unroll
      for (int e = 2 * (h % 2); e < 2 * (h % 2) + 2; ++e) {
        const int col = 2 * (lane % 4) + (e & 1);
        const int key = key0 + (L::kFp8 ? fp8_key_of(n, col) : n * 8 + col);
        float& v = s[h / 2][n][e];
        v = key < st.limit[h] ? v * scale_log2 : -INFINITY;
        mx = fmaxf(mx, v);
      }
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(st.m[h], mx);
    use[h] = m_new == -INFINITY ? 0.0f : m_new;  // a row with nothing visible yet
    alpha[h] = exp2_ftz(st.m[h] - use[h]);       // 0 while the old max is still -inf
    st.m[h] = m_new;
    st.l[h] *= alpha[h];
    rescale |= alpha[h] != 1.0f;
  }
  // Once the rows' maxima settle, a tile rarely raises one: the accumulator is rescaled only
  // when some row of the warp needs it (exp2_ftz(0) is exactly 1).
  if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
    for (int h = 0; h < 2 * MT; ++h) {
#pragma unroll
      for (int n = 0; n < HD / 8; ++n) {
        st.o[h / 2][n][2 * (h % 2)] *= alpha[h];
        st.o[h / 2][n][2 * (h % 2) + 1] *= alpha[h];
      }
    }
  }
  // P V, 16 keys per step: two score tiles make one A fragment; V rows are keys, so the
  // transposing ldmatrix gives the column-major B fragment (FP8: V is stored transposed, and a
  // lane's four keys are one 4-byte load of its dim's row).
#pragma unroll
  for (int kk = 0; kk < kNt / 2; ++kk) {
    uint32_t a[MT][4];
#pragma unroll
    for (int m = 0; m < MT; ++m) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float* t = s[m][2 * kk + half];
        t[0] = exp2_ftz(t[0] - use[2 * m]);
        t[1] = exp2_ftz(t[1] - use[2 * m]);
        t[2] = exp2_ftz(t[2] - use[2 * m + 1]);
        t[3] = exp2_ftz(t[3] - use[2 * m + 1]);
        a[m][2 * half] = pack_rounded<C>(t[0], t[1]);
        a[m][2 * half + 1] = pack_rounded<C>(t[2], t[3]);
        st.l[2 * m] += t[0] + t[1];
        st.l[2 * m + 1] += t[2] + t[3];
      }
    }
    if constexpr (L::kFp8) {
#pragma unroll
      for (int n = 0; n < HD / 8; ++n) {
        const int dim = n * 8 + lane / 4;
        const uint32_t w = *reinterpret_cast<const uint32_t*>(v_s + L::v_at(dim, slice0 / 16 + kk) +
                                                              4 * (lane % 4));
        uint32_t b0, b1;
        e4m3x4_to_f16x2x2(w, b0, b1);
#pragma unroll
        for (int m = 0; m < MT; ++m) mma16816<C>(st.o[m][n], a[m], b0, b1);
      }
    } else {
      const C* v_t = reinterpret_cast<const C*>(v_s);
#pragma unroll
      for (int n = 0; n < HD / 8; n += 2) {
        uint32_t b[4];
        const int key = slice0 + kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8;
        ldmatrix_x4_trans(b, v_t + key * ld + n * 8 + (lane / 16) * 8);
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          mma16816<C>(st.o[m][n], a[m], b[0], b[1]);
          mma16816<C>(st.o[m][n + 1], a[m], b[2], b[3]);
        }
      }
    }
  }
}

// Output elements [d0, d0 + N) of one finished row: the normalised output (one split), or the
// unnormalised partial and the row's (max, sum) for combine_splits_kernel; vector stores.
template <typename T, int HD, int N>
__device__ __forceinline__ void store_run(const KernelParams& p, int seq, int split, int64_t token,
                                          int head, int d0, const float (&acc)[N], float m,
                                          float l) {
  static_assert(N % 2 == 0, "pairs of elements");
  if (p.splits == 1) {
    uint32_t packed[N / 2];
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      float lo = l > 0.0f ? acc[2 * i] / l : 0.0f;
      float hi = l > 0.0f ? acc[2 * i + 1] / l : 0.0f;
      packed[i] = pack_rounded<T>(lo, hi);
    }
    T* out = static_cast<T*>(p.out) + (token * p.num_heads + head) * HD + d0;
    if constexpr (N % 4 == 0) {
#pragma unroll
      for (int i = 0; i < N / 4; ++i) {
        reinterpret_cast<uint2*>(out)[i] = make_uint2(packed[2 * i], packed[2 * i + 1]);
      }
    } else {
#pragma unroll
      for (int i = 0; i < N / 2; ++i) reinterpret_cast<uint32_t*>(out)[i] = packed[i];
    }
  } else {
    const int64_t part = (int64_t{seq} * p.num_heads + head) * p.splits + split;
    float* dst = p.partial_acc + part * HD + d0;
    if constexpr (N % 4 == 0) {
#pragma unroll
      for (int i = 0; i < N / 4; ++i) {
        reinterpret_cast<float4*>(dst)[i] =
            make_float4(acc[4 * i], acc[4 * i + 1], acc[4 * i + 2], acc[4 * i + 3]);
      }
    } else {
#pragma unroll
      for (int i = 0; i < N / 2; ++i) {
        reinterpret_cast<float2*>(dst)[i] = make_float2(acc[2 * i], acc[2 * i + 1]);
      }
    }
    if (d0 == 0) p.partial_ml[part] = make_float2(m, l);
  }
}

// Rows of one warp that saw every key of its range (one slice): straight from registers.
template <typename T, int HD, int MT>
__device__ __forceinline__ void store_warp_rows(const KernelParams& p, int seq, int split,
                                                int first_token, int row_base, int nrows,
                                                const RowState<HD, MT>& st) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int h = 0; h < 2 * MT; ++h) {
    const int row = row_base + (h / 2) * 16 + lane / 4 + 8 * (h % 2);
    if (row >= nrows) continue;
    const int64_t token = first_token + row / p.group;
    const int head = (row % p.group) + (blockIdx.x * p.group);
#pragma unroll
    for (int n = 0; n < HD / 8; ++n) {
      const int d = n * 8 + 2 * (lane % 4);
      const float pair[2] = {st.o[h / 2][n][2 * (h % 2)], st.o[h / 2][n][2 * (h % 2) + 1]};
      store_run<T, HD, 2>(p, seq, split, token, head, d, pair, st.m[h], st.l[h]);
    }
  }
}

// Decode: the warps hold the same 16 rows over different key slices; their states meet in
// shared memory. Each thread then merges 16 consecutive elements of one row, working out the
// row's weights from the four (max, sum) pairs itself: the eight threads of a row repeat that
// small sum rather than wait at a third barrier for 16 threads to publish it.
// L: the CTA's shared-memory layout, whose merge_o / merge_ml regions may overlap its K/V tiles.
template <typename L, typename T, int HD>
__device__ __forceinline__ void merge_and_store(const KernelParams& p, int seq, int split,
                                                int first_token, int row0, int nrows,
                                                unsigned char* smem, const RowState<HD, 1>& st) {
  constexpr int kLdo = L::kMergeLd;
  float* mo = reinterpret_cast<float*>(smem + L::merge_o);
  float2* ml = reinterpret_cast<float2*>(smem + L::merge_ml);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  __syncthreads();  // every warp is done reading the last K/V tile
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = lane / 4 + 8 * h;
    if (lane % 4 == 0) ml[warp * 16 + r] = make_float2(st.m[h], st.l[h]);
    float* dst = mo + (warp * 16 + r) * kLdo + 2 * (lane % 4);
#pragma unroll
    for (int n = 0; n < HD / 8; ++n) {
      *reinterpret_cast<float2*>(dst + n * 8) =
          make_float2(st.o[0][n][2 * h], st.o[0][n][2 * h + 1]);
    }
  }
  __syncthreads();
  // Thread j of a row's kThreadsPerRow takes the 4-element groups j, j + kThreadsPerRow, ...,
  // so that each store instruction writes whole rows' consecutive bytes: with 16 consecutive
  // elements a thread, the partial rows' stores touched four times the sectors (measured: those
  // stores cost a 163-key batch-1 step on the H200 0.044 ms).
  constexpr int kPerThread = 16;
  constexpr int kThreadsPerRow = HD / kPerThread;
  constexpr int kStride = 4 * kThreadsPerRow;  // elements between a thread's groups
  static_assert(16 * kThreadsPerRow <= kThreads, "one pass covers the 16 rows");
  const int r = threadIdx.x / kThreadsPerRow;
  const int d0 = (threadIdx.x % kThreadsPerRow) * 4;
  const int row = row0 + r;
  if (r >= 16 || row >= nrows) return;
  float m = -INFINITY;
  for (int w = 0; w < kWarps; ++w) m = fmaxf(m, ml[w * 16 + r].x);
  const float m_use = m == -INFINITY ? 0.0f : m;
  float l = 0.0f;
  float acc[kPerThread / 4][4] = {};
  for (int w = 0; w < kWarps; ++w) {
    const float2 state = ml[w * 16 + r];
    const float scale = exp2f(state.x - m_use);
    l += scale * state.y;
    const float* src = mo + (w * 16 + r) * kLdo + d0;
#pragma unroll
    for (int i = 0; i < kPerThread / 4; ++i) {
      const float4 v = *reinterpret_cast<const float4*>(src + i * kStride);
      acc[i][0] += scale * v.x;
      acc[i][1] += scale * v.y;
      acc[i][2] += scale * v.z;
      acc[i][3] += scale * v.w;
    }
  }
  const int64_t token = first_token + row / p.group;
  const int head = blockIdx.x * p.group + row % p.group;
#pragma unroll
  for (int i = 0; i < kPerThread / 4; ++i) {
    store_run<T, HD, 4>(p, seq, split, token, head, d0 + i * kStride, acc[i], m, l);
  }
}

// Two Q elements as the FP16 pair an FP8 layout's MMAs take, saturated to FP16's range.
template <typename T>
__device__ __forceinline__ __half2 q_pair_as_half2(T lo, T hi) {
  return __floats2half2_rn(fminf(fmaxf(to_f32(lo), -65504.0f), 65504.0f),
                           fminf(fmaxf(to_f32(hi), -65504.0f), 65504.0f));
}

// This CTA's Q rows into shared memory (zeros past the last row); plain loads, made visible to
// the other warps by the caller's barrier. FP8 layouts take Q in FP16 (saturated to its range)
// with the dims of every 16 in fp8_q_column's order.
template <typename L, int ROWS>
__device__ __forceinline__ void load_q_rows(const KernelParams& p, int kv_head, int first_token,
                                            int row0, int nrows, typename L::QT* q_s) {
  using T = typename L::Elem;
  constexpr int HD = L::kHeadDim;
  constexpr int kChunks = HD / 8;
  constexpr int kPerThread = ROWS * kChunks / kThreads;
  static_assert(ROWS * kChunks % kThreads == 0, "Q rows must split evenly over threads");
  // Loads issued in groups before their stores: the stores go through generic pointers, which
  // the compiler may not move a later load above (one round trip per chunk otherwise).
  constexpr int kGroup = kPerThread < 4 ? kPerThread : 4;
  const T* q = static_cast<const T*>(p.q);
#pragma unroll
  for (int g = 0; g < kPerThread; g += kGroup) {
    uint4 chunk[kGroup];
#pragma unroll
    for (int u = 0; u < kGroup; ++u) {
      const int i = threadIdx.x + (g + u) * kThreads;
      const int row = row0 + i / kChunks;
      chunk[u] = make_uint4(0, 0, 0, 0);
      if (row < nrows) {
        const int64_t token = first_token + row / p.group;
        const int head = kv_head * p.group + row % p.group;
        chunk[u] =
            reinterpret_cast<const uint4*>(q + (token * p.num_heads + head) * HD)[i % kChunks];
      }
    }
#pragma unroll
    for (int u = 0; u < kGroup; ++u) {
      const int i = threadIdx.x + (g + u) * kThreads;
      typename L::QT* dst = q_s + (i / kChunks) * L::kLd;
      if constexpr (L::kFp8) {
        // Eight dims: two runs of four, each split into the pairs at columns 2c and 8 + 2c.
        const T* e = reinterpret_cast<const T*>(&chunk[u]);
        const int d0 = (i % kChunks) * 8;
#pragma unroll
        for (int pair = 0; pair < 4; ++pair) {
          *reinterpret_cast<__half2*>(dst + fp8_q_column(d0 + 2 * pair)) =
              q_pair_as_half2(e[2 * pair], e[2 * pair + 1]);
        }
      } else {
        *reinterpret_cast<uint4*>(dst + (i % kChunks) * 8) = chunk[u];
      }
    }
  }
}

// What a CTA of `rows` query rows owns: grid (KV head, sequence or its seq_list entry, row tile x
// split), the longest row tiles (the causal triangle's bottom) scheduled first. Reads only the
// step's batch arrays (uploaded before the step's first kernel).
struct CtaWork {
  int seq, split, first_token, qlen, ctx, nrows, row0;
};
__device__ __forceinline__ CtaWork cta_work(const KernelParams& p, int rows) {
  CtaWork w;
  w.seq = p.seq_list != nullptr ? p.seq_list[blockIdx.y] : static_cast<int>(blockIdx.y);
  const int row_tile = p.row_tiles - 1 - static_cast<int>(blockIdx.z) % p.row_tiles;
  w.split = static_cast<int>(blockIdx.z) / p.row_tiles;
  w.first_token = p.batch.seq_start[w.seq];
  w.qlen = p.batch.seq_start[w.seq + 1] - w.first_token;
  w.ctx = p.batch.context_len[w.seq];
  w.nrows = w.qlen * p.group;
  w.row0 = row_tile * rows;
  return w;
}

// grid (num_kv_heads, n_seqs or the seq_list's length, row_tiles * splits), kThreads threads,
// Smem<...>::bytes dynamic. The decode instantiation skips sequences with more than one token (a
// mixed step's prefill chunks, which the prefill instantiation takes through seq_list). FP8:
// the pool holds E4M3 (attention.h's layout); T stays the type of q and out.
//
// An FP8 decode CTA is held to 128 registers so that four share an SM (the shared memory of its
// two dense stages allows six; at the 166 registers it took unbounded, three did): one wave then
// holds batch 256's 512 CTAs without splitting the keys (H200, batch 256 x 1,024 / 2,048 keys:
// 78 -> 60 / 129 -> 111 us). Zero spills at 128 (ptxas -v).
template <int ROWS, bool FP8>
constexpr int kMinCtasPerSm = (FP8 && ROWS == kDecodeRows) ? 4 : 0;  // 0: no bound
template <typename T, int HD, int ROWS, bool FP8>
__global__ void __launch_bounds__(kThreads, kMinCtasPerSm<ROWS, FP8>)
    paged_attention_kernel(const KernelParams p) {
  using W = WarpSplit<ROWS>;
  using L = Smem<T, HD, ROWS, FP8>;
  // kv_before_wait: the batch arrays come from the host upload before the step and every key
  // but the step's own from earlier steps, so they are read while the QKV kernel drains. (Not
  // with FP8 tiles, whose V runs hold 16 keys each, the step's own among them.)
  const bool early = !FP8 && ROWS == kDecodeRows && p.kv_before_wait;
  if (!early) wait_for_previous_kernel();
  extern __shared__ __align__(128) unsigned char smem[];
  typename L::QT* q_s = reinterpret_cast<typename L::QT*>(smem + L::q);
  unsigned char* tiles = smem + L::kv;

  const int kv_head = blockIdx.x;
  // Stage i's K tile, its V tile at + L::k_tile.
  const auto stage_at = [&](int i) { return tiles + i * L::stage; };
  const auto fetch = [&](int i, int tile0, int kend, const auto& entry, int defer_from) {
    unsigned char* k_s = stage_at(i);
    // Whole tiles of a power-of-two pool take the fast copies, in decode CTAs only: prefill CTAs
    // compute long enough per tile, and the second path's registers cost their occupancy. (FP8
    // CTAs defer no keys.)
    const int copy_end = FP8 ? kend : min(kend, defer_from);
    const bool whole = ROWS == kDecodeRows && p.block_shift >= 0 && tile0 + kKeyTile <= copy_end;
    if constexpr (FP8) {
      if (whole) {
        fetch_full_tile_fp8<L>(p, kv_head, tile0, entry, k_s, k_s + L::k_tile);
      } else {
        fetch_kv_tile_fp8<L>(p, kv_head, tile0, kend, entry, k_s, k_s + L::k_tile);
      }
    } else {
      T* v_s = reinterpret_cast<T*>(k_s + L::k_tile);
      if (whole) {
        fetch_full_tile<T, HD>(p, kv_head, tile0, entry, reinterpret_cast<T*>(k_s), v_s, L::kLd);
      } else {
        fetch_kv_tile<T, HD>(p, kv_head, tile0, kend, entry, reinterpret_cast<T*>(k_s), v_s, L::kLd,
                             defer_from);
      }
    }
  };
  const auto [seq, split, first_token, qlen, ctx, nrows, row0] = cta_work(p, ROWS);
  // Fewer query rows than the longest sequence, or a prefill chunk in a decode launch.
  if (row0 >= nrows || (ROWS == kDecodeRows && qlen > 1)) {
    if (early) wait_for_previous_kernel();  // the kernel's completion implies its predecessor's
    return;
  }
  const int last_pos = ctx - qlen + (min(nrows, row0 + ROWS) - 1) / p.group;
  const int kbeg = split * p.split_len;
  const int kend = min(min(ctx, kbeg + p.split_len), last_pos + 1);
  if (kbeg >= kend) {  // a split past this sequence's context: the combine skips it
    if (early) wait_for_previous_kernel();
    return;
  }
  const int defer_from = early ? ctx - qlen : INT32_MAX;  // the keys this step writes

  // Start the first kStages - 1 K/V tiles (one commit group each, empty past the end), then
  // bring this tile's Q rows (zeros past the last row) in.
  int32_t entry[kTileEntries<HD, FP8>];
#pragma unroll
  for (int i = 0; i < L::kStages - 1; ++i) {
    const int tile0 = kbeg + i * kKeyTile;
    if (tile0 < kend) {
      load_tile_entries<HD, FP8, ROWS == kDecodeRows>(p, seq, tile0, kend, entry);
      fetch(i, tile0, kend, entry, defer_from);
    }
    cp_async_commit();
  }
  // Decode: the entries of the loop's first copy, in flight while the first tiles are computed
  // (prefill CTAs compute long enough per tile, and have no registers to spare for them).
  constexpr bool kEntriesAhead = ROWS == kDecodeRows;
  if constexpr (kEntriesAhead) {
    load_tile_entries<HD, FP8, kEntriesAhead>(p, seq, kbeg + (L::kStages - 1) * kKeyTile, kend,
                                              entry);
  }
  if constexpr (!FP8) {
    if (early) {
      wait_for_previous_kernel();
#pragma unroll
      for (int i = 0; i < L::kStages - 1; ++i) {
        const int tile0 = kbeg + i * kKeyTile;
        T* k_s = reinterpret_cast<T*>(stage_at(i));
        if (tile0 < kend && tile0 + kKeyTile > defer_from) {
          fill_deferred_keys<T, HD>(p, kv_head, seq, tile0, defer_from, kend, k_s,
                                    reinterpret_cast<T*>(stage_at(i) + L::k_tile), L::kLd);
        }
      }
    }
  }
  load_q_rows<L, ROWS>(p, kv_head, first_token, row0, nrows, q_s);
  __syncthreads();

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int group_row = (warp % W::kRowGroups) * 16 * W::kMt;  // the warp's first row
  const int slice0 = (warp / W::kRowGroups) * W::kSliceKeys;
  const bool has_rows = row0 + group_row < nrows;  // else the warp only helps copy tiles
  RowState<HD, W::kMt> st;
  HeldQ<HD> held_q;
  if constexpr (W::kMt == 1) {
    if (has_rows) load_held_q<HD>(q_s + group_row * L::kLd, L::kLd, held_q);
  }
#pragma unroll
  for (int h = 0; h < 2 * W::kMt; ++h) {
    const int row = row0 + group_row + (h / 2) * 16 + lane / 4 + 8 * (h % 2);
    st.m[h] = -INFINITY;
    st.l[h] = 0.0f;
    st.limit[h] = row < nrows ? min(ctx - qlen + row / p.group + 1, kend) : 0;
  }

  int stage = 0;
  for (int tile0 = kbeg; tile0 < kend; tile0 += kKeyTile) {
    // The tile kStages - 1 ahead streams in while this one is computed; its slot was freed by
    // the previous iteration's closing barrier.
    const int ahead = tile0 + (L::kStages - 1) * kKeyTile;
    if (ahead < kend) {
      if constexpr (!kEntriesAhead) load_tile_entries<HD, FP8, false>(p, seq, ahead, kend, entry);
      fetch((stage + L::kStages - 1) % L::kStages, ahead, kend, entry, INT32_MAX);
      if constexpr (kEntriesAhead)
        load_tile_entries<HD, FP8, true>(p, seq, ahead + kKeyTile, kend, entry);
    }
    cp_async_commit();
    cp_async_wait<L::kStages - 1>();  // this iteration's tile has landed (for this thread)
    __syncthreads();                  // ... and for every thread
    const unsigned char* k_s = stage_at(stage);
    if (has_rows) {
      warp_tile<L, W::kSliceKeys, W::kMt>(q_s + group_row * L::kLd, held_q, k_s, k_s + L::k_tile,
                                          slice0, tile0 + slice0, p.scale_log2, st);
    }
    __syncthreads();  // every warp done with this stage before a later fetch overwrites it
    stage = (stage + 1) % L::kStages;
  }
  if (p.late_trigger) allow_next_kernel();  // every K/V load of this block has been used
#pragma unroll
  for (int h = 0; h < 2 * W::kMt; ++h) {  // the row sums over the four lanes of a row
    st.l[h] += __shfl_xor_sync(0xffffffffu, st.l[h], 1);
    st.l[h] += __shfl_xor_sync(0xffffffffu, st.l[h], 2);
  }
  if constexpr (W::kSlices == 1) {
    store_warp_rows<T, HD, W::kMt>(p, seq, split, first_token, row0 + group_row, nrows, st);
  } else {
    static_assert(W::kRowGroups == 1, "slices merge one 16-row group");
    merge_and_store<L, T, HD>(p, seq, split, first_token, row0, nrows, smem, st);
  }
}

// Merges the splits of decode rows: grid (n_seqs, num_heads), HD threads (one per element).
template <typename T, int HD>
__global__ void __launch_bounds__(HD) combine_splits_kernel(const KernelParams p) {
  const int seq = blockIdx.x;
  const int head = blockIdx.y;
  const int d = threadIdx.x;
  // The batch arrays come from the step's upload, before its first kernel: read while the
  // attention kernel drains, they leave one L2 round trip after the wait, not two (H200, 9B
  // batch-1 step: 4.612-4.614 against 4.618-4.620 ms).
  const int token = p.batch.seq_start[seq];
  const int next_token = p.batch.seq_start[seq + 1];
  const int ctx = p.batch.context_len[seq];
  wait_for_previous_kernel();
  if (next_token - token != 1) return;  // decode route: one token a sequence
  const int used = min(p.splits, (ctx + p.split_len - 1) / p.split_len);
  const int64_t base = (int64_t{seq} * p.num_heads + head) * p.splits;
  float m = -INFINITY;
  float acc = 0.0f;
  float l = 0.0f;
  // The splits in chunks of kHeld, each chunk's loads issued together (a loop of one split at a
  // time waited one L2 round trip per split: 0.03 ms of a 163-key batch-1 step on the H200).
  // With one chunk, the second pass reuses the first pass's values.
  constexpr int kHeld = 8;
  float2 mls[kHeld];
  float accs[kHeld];
  const auto load_chunk = [&](int i0) {
#pragma unroll
    for (int i = 0; i < kHeld; ++i) {
      if (i0 + i < used) {
        mls[i] = p.partial_ml[base + i0 + i];
        accs[i] = p.partial_acc[(base + i0 + i) * HD + d];
      }
    }
  };
  for (int i0 = 0; i0 < used; i0 += kHeld) {
    load_chunk(i0);
#pragma unroll
    for (int i = 0; i < kHeld; ++i) {
      if (i0 + i < used) m = fmaxf(m, mls[i].x);
    }
  }
  for (int i0 = 0; i0 < used; i0 += kHeld) {
    if (used > kHeld) load_chunk(i0);
#pragma unroll
    for (int i = 0; i < kHeld; ++i) {
      if (i0 + i < used) {
        const float w = exp2f(mls[i].x - m);
        acc += w * accs[i];
        l += w * mls[i].y;
      }
    }
  }
  if (p.late_trigger) allow_next_kernel();
  T* out = static_cast<T*>(p.out);
  out[(int64_t{token} * p.num_heads + head) * HD + d] = from_f32<T>(l > 0.0f ? acc / l : 0.0f);
}

}  // namespace autoglm::cuda::attn
