// Device code of the encoder kernels and the general product (included by gemm_fp32.cu,
// gemm_tf32.cu and matmul.cu only): the FP32 tile product, which stages 128 x 32 operand tiles
// through registers into shared memory, and the epilogue that turns a finished 128 x 128 tile
// into compacted active units.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gemm.cuh"

namespace saekit::cuda {

constexpr int kGemmThreads = 256;  // 8 warps
constexpr int kGemmTileK = 32;
// Row stride of the FP32 kernel's finished tile in shared memory: 16 banks apart for the two
// rows a warp writes at once.
constexpr int kGemmLdC = kGemmTileN + 16;
constexpr int kStageValues = kGemmTileM * kGemmTileK / kGemmThreads;  // 16 per thread
static_assert(kGemmTileM == kGemmTileN, "one loader serves both operands");
static_assert(kGemmThreads == 8 * kGemmTileK && kGemmThreads == 2 * kGemmTileM, "the loaders' thread mappings");

// Loads rows [row0, row0 + 128) x depth [k0, k0 + 32) of an operand into registers, zeros
// outside (`rows` x `depth` valid). kKContiguous: element (row, k) is at m[row * ld + k], and
// thread t loads k0 + t % 32 of rows row0 + t / 32 + 8 s, so a warp reads 32 consecutive
// floats of a row. Otherwise element (row, k) is at m[k * ld + row] (a transposed operand),
// and thread t loads row row0 + t % 128 at depths k0 + t / 128 + 2 s: a warp reads 32
// consecutive rows at one depth.
template <bool kKContiguous>
__device__ __forceinline__ void loadOperandTile(float (&v)[kStageValues], const float* __restrict__ m, int64_t ld,
                                                int64_t rows, int64_t depth, int64_t row0, int64_t k0) {
#pragma unroll
  for (int s = 0; s < kStageValues; ++s) {
    int64_t row, k;
    if (kKContiguous) {
      row = row0 + (threadIdx.x >> 5) + 8 * s;
      k = k0 + (threadIdx.x & 31);
    } else {
      row = row0 + (threadIdx.x & 127);
      k = k0 + (threadIdx.x >> 7) + 2 * s;
    }
    v[s] = (row < rows && k < depth) ? (kKContiguous ? m[row * ld + k] : m[k * ld + row]) : 0.0f;
  }
}

// The same values into tile[row * kLd + k] (row < 128, k < 32), with the same mapping.
template <bool kKContiguous, int kLd>
__device__ __forceinline__ void storeOperandTile(float* tile, const float (&v)[kStageValues]) {
#pragma unroll
  for (int s = 0; s < kStageValues; ++s) {
    if (kKContiguous) {
      tile[((threadIdx.x >> 5) + 8 * s) * kLd + (threadIdx.x & 31)] = v[s];
    } else {
      tile[(threadIdx.x & 127) * kLd + (threadIdx.x >> 7) + 2 * s] = v[s];
    }
  }
}

// The FP32 main loop (gemm_fp32.cu, matmul.cu): the 128 x 128 tile at (row0, col0) of
// a b^T over depth k, a [rows, k] and b [n, k] as loadOperandTile reads them. 128 x 128 tiles, k in
// steps of 32 staged through shared memory with the next step's loads in flight; thread
// (tx, ty) = (t % 16, t / 16) accumulates rows ty + 16 i and columns tx + 16 j (i, j < 8) of
// the tile, each a sequential chain of fmaf over k. `shared` holds kFp32SharedFloats floats.
// Returns after a barrier, with every thread done reading `shared`.
constexpr int kFp32Ld = kGemmTileK + 1;  // odd: a warp's 16 rows at one k are 16 banks
constexpr int kFp32Stage = kGemmTileM * kFp32Ld;
constexpr int kFp32SharedFloats =
    4 * kFp32Stage > kGemmTileM * kGemmLdC ? 4 * kFp32Stage : kGemmTileM * kGemmLdC;

template <bool kAKContiguous, bool kBKContiguous>
__device__ __forceinline__ void fp32TileProduct(float* shared, const float* __restrict__ a, int64_t lda, int64_t rows,
                                                const float* __restrict__ b, int64_t ldb, int64_t n, int64_t k,
                                                int64_t row0, int64_t col0, float (&acc)[8][8]) {
  float* as = shared;                   // [2][128][kFp32Ld]: rows of a
  float* bs = shared + 2 * kFp32Stage;  // [2][128][kFp32Ld]: rows of b (columns of the product)
  const int tx = threadIdx.x & 15;
  const int ty = threadIdx.x >> 4;
  const int64_t kTiles = (k + kGemmTileK - 1) / kGemmTileK;
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
  float stageA[kStageValues], stageB[kStageValues];
  loadOperandTile<kAKContiguous>(stageA, a, lda, rows, k, row0, 0);
  loadOperandTile<kBKContiguous>(stageB, b, ldb, n, k, col0, 0);
  storeOperandTile<kAKContiguous, kFp32Ld>(as, stageA);
  storeOperandTile<kBKContiguous, kFp32Ld>(bs, stageB);
  __syncthreads();
  for (int64_t kt = 0; kt < kTiles; ++kt) {
    const int buffer = static_cast<int>(kt & 1);
    const bool more = kt + 1 < kTiles;
    if (more) {
      loadOperandTile<kAKContiguous>(stageA, a, lda, rows, k, row0, (kt + 1) * kGemmTileK);
      loadOperandTile<kBKContiguous>(stageB, b, ldb, n, k, col0, (kt + 1) * kGemmTileK);
    }
    const float* at = as + buffer * kFp32Stage;
    const float* bt = bs + buffer * kFp32Stage;
#pragma unroll 4
    for (int kk = 0; kk < kGemmTileK; ++kk) {
      float av[8], bv[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) av[i] = at[(ty + 16 * i) * kFp32Ld + kk];
#pragma unroll
      for (int j = 0; j < 8; ++j) bv[j] = bt[(tx + 16 * j) * kFp32Ld + kk];
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    // The other buffer was last read in step kt - 1, which every warp finished before the
    // barrier that ended it.
    if (more) {
      storeOperandTile<kAKContiguous, kFp32Ld>(as + (buffer ^ 1) * kFp32Stage, stageA);
      storeOperandTile<kBKContiguous, kFp32Ld>(bs + (buffer ^ 1) * kFp32Stage, stageB);
    }
    __syncthreads();
  }
}

// tile[r * kLd + c] holds the product for row row0 + r and column col0 + c. Each warp takes
// rows in turn; its 32 lanes read 32 consecutive columns per round, and ballots give every
// active unit its place, so units are written in increasing column order.
template <int kLd = kGemmLdC>
__device__ __forceinline__ void compactTile(const float* tile, int64_t row0, int64_t rows, int64_t col0, int64_t n,
                                            int64_t tileIndex, const ActiveUnitsOut& out) {
  constexpr int kRounds = kGemmTileN / 32;
  constexpr unsigned kAll = 0xffffffffu;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  float bias[kRounds];
  bool inRange[kRounds];
#pragma unroll
  for (int q = 0; q < kRounds; ++q) {
    const int64_t col = col0 + q * 32 + lane;
    inRange[q] = col < n;
    bias[q] = inRange[q] ? out.bias[col] : 0.0f;
  }
  for (int r = warp; r < kGemmTileM; r += kGemmThreads / 32) {
    const int64_t row = row0 + r;
    if (row >= rows) break;  // the same for the whole warp
    unsigned mask[kRounds];
    float value[kRounds];
    int count = 0;
#pragma unroll
    for (int q = 0; q < kRounds; ++q) {
      value[q] = tile[r * kLd + q * 32 + lane] + bias[q];
      mask[q] = __ballot_sync(kAll, inRange[q] && value[q] > 0.0f);
      count += __popc(mask[q]);
    }
    const int64_t slot = row * out.tiles + tileIndex;
    if (count == 0) {
      if (lane == 0) out.tileCount[slot] = 0;
      continue;
    }
    unsigned long long base = 0;
    if (lane == 0) base = atomicAdd(out.poolUsed, static_cast<unsigned long long>(count));
    base = __shfl_sync(kAll, base, 0);
    if (lane == 0) {
      out.tileCount[slot] = count;
      out.tilePos[slot] = static_cast<int64_t>(base);
    }
    if (static_cast<int64_t>(base) + count > out.poolCapacity) continue;
    int offset = 0;
    const unsigned below = (1u << lane) - 1u;
#pragma unroll
    for (int q = 0; q < kRounds; ++q) {
      if ((mask[q] >> lane) & 1u) {
        const int64_t at = static_cast<int64_t>(base) + offset + __popc(mask[q] & below);
        out.poolValues[at] = value[q] + out.addBack;
        out.poolIndices[at] = static_cast<int32_t>(col0 + q * 32 + lane);
      }
      offset += __popc(mask[q]);
    }
  }
}

}  // namespace saekit::cuda

namespace saekit::cuda {

// Launchers of the kernels (gemm_fp32.cu, gemm_tf32.cu), called by encoderProduct.
void launchEncoderFp32(dim3 grid, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb, int64_t n,
                       int64_t k, const ActiveUnitsOut& out, cudaStream_t stream);
void launchEncoderTf32(dim3 grid, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb, int64_t n,
                       int64_t k, const ActiveUnitsOut& out, cudaStream_t stream);

}  // namespace saekit::cuda
