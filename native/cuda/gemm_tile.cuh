// Device code both encoder kernels share (included by gemm_fp32.cu and gemm_tf32.cu only):
// staging 128 x 32 tiles of a K-contiguous operand through registers into shared memory, and
// the epilogue that turns a finished 128 x 128 tile into compacted active units.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gemm.cuh"

namespace saekit::cuda {

constexpr int kGemmThreads = 256;  // 8 warps
constexpr int kGemmTileK = 32;
// Row stride of the finished tile in shared memory: a multiple of 4 (wmma stores), and 16
// banks apart for the two rows a warp of the FP32 kernel writes at once.
constexpr int kGemmLdC = kGemmTileN + 16;
constexpr int kStageValues = kGemmTileM * kGemmTileK / kGemmThreads;  // 16 per thread
static_assert(kGemmTileM == kGemmTileN, "one loader serves both operands");
static_assert(kGemmThreads == 8 * kGemmTileK, "the loader maps 32 lanes to the 32 columns of k");

// Thread t loads column k0 + t % 32 of rows row0 + t / 32 + 8 s (s < 16) of m (`rows` x `cols`
// valid, leading dimension ld), zero outside: each warp reads 32 consecutive floats of a row.
__device__ __forceinline__ void loadTile(float (&v)[kStageValues], const float* __restrict__ m, int64_t ld,
                                         int64_t rows, int64_t cols, int64_t row0, int64_t k0) {
  const int64_t k = k0 + (threadIdx.x & 31);
  const int r = threadIdx.x >> 5;
#pragma unroll
  for (int s = 0; s < kStageValues; ++s) {
    const int64_t row = row0 + r + 8 * s;
    v[s] = (row < rows && k < cols) ? m[row * ld + k] : 0.0f;
  }
}

// The same values into tile[row * kLd + k] (row < 128, k < 32).
template <int kLd>
__device__ __forceinline__ void storeTile(float* tile, const float (&v)[kStageValues]) {
  const int k = threadIdx.x & 31;
  const int r = threadIdx.x >> 5;
#pragma unroll
  for (int s = 0; s < kStageValues; ++s) tile[(r + 8 * s) * kLd + k] = v[s];
}

// tile[r * kGemmLdC + c] holds the product for row row0 + r and column col0 + c. Each warp takes
// rows in turn; its 32 lanes read 32 consecutive columns per round, and ballots give every
// active unit its place, so units are written in increasing column order.
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
      value[q] = tile[r * kGemmLdC + q * 32 + lane] + bias[q];
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

// Launchers of the two kernels (gemm_fp32.cu, gemm_tf32.cu), called by encoderProduct.
void launchEncoderFp32(dim3 grid, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb, int64_t n,
                       int64_t k, const ActiveUnitsOut& out, cudaStream_t stream);
void launchEncoderTf32(dim3 grid, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb, int64_t n,
                       int64_t k, const ActiveUnitsOut& out, cudaStream_t stream);

}  // namespace saekit::cuda
