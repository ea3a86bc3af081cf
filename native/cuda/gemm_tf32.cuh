// The TF32 encoder kernel (launched by gemm_tf32.cu): inputs rounded to nearest TF32 (ties
// away from zero), FP32 accumulation, written to keep the tensor cores busy. It replaced a WMMA
// kernel that reached about 35 TFLOP/s on an H100 (one block of 180 registers a thread per SM,
// operands staged through registers two steps deep); on an H100 it took the 768 x 24576 step
// from 9.10 to 6.40 ms (bench/cuda_speed.mjs, 2026-11-26).
//   - Operand tiles go from global to shared memory with cp.async, three stages deep, so the
//     copies for steps kt + 1 and kt + 2 are in flight while step kt computes; no registers
//     are spent on staging.
//   - Each thread rounds the values it copied to TF32 in place, once, before the barrier that
//     publishes the stage (each value is then read by two or four warps).
//   - Fragments are read with ldmatrix from a swizzled layout (gemm_tf32_layout.h, where every
//     index is defined and host-tested) and fed to mma.sync.m16n8k8 directly.
//   - At most 128 registers a thread and 96 KB of shared memory: two blocks share an SM on
//     sm_90 (228 KB a SM); one does on sm_80 (164 KB) and sm_86/89 (whose blocks may use at
//     most 99 KB).
// Operands whose rows are 16-byte aligned are copied 16 bytes at a time, others 4 bytes at a
// time (same layout; those copies meet 4-way bank conflicts, acceptable for the rare dIn that
// is not a multiple of 4). The PTX comes through ptx.cuh only, so that
// native/tests/cuda_emulated_tests.cc can run this kernel on the host.
#pragma once

#include <cstdint>

#include "gemm_tf32_layout.h"
#include "gemm_tile.cuh"
#include "ptx.cuh"

namespace saekit::cuda {
namespace tf32 {

constexpr int kPipelineStages = 3;
constexpr int kStageFloats = 2 * kOperandFloats;  // a's tile, then b's
constexpr size_t kTf32SharedBytes =
    sizeof(float) * (kPipelineStages * kStageFloats > kTileRows * kEpilogueLd ? kPipelineStages * kStageFloats
                                                                               : kTileRows * kEpilogueLd);
static_assert(kTileRows == kGemmTileM && kTileRows == kGemmTileN, "the compaction's tile");
static_assert(kThreads == kGemmThreads, "compactTile's warps");
static_assert(kTf32SharedBytes <= 99 * 1024, "fits the blocks of sm_86 and sm_89");

// Whether an operand's rows allow the 16-byte copies (kVector): 16-byte aligned m and ld.
inline bool sixteenByteRows(const float* m, int64_t ld) {
  return reinterpret_cast<uintptr_t>(m) % 16 == 0 && ld % kChunkFloats == 0;
}

// Rows [row0, row0 + 128) x depth [k0, k0 + 32) of m ([rows, depth], leading dimension ld) into
// one operand tile, zeros outside. kVector: ld and m are 16-byte aligned.
template <bool kVector>
__device__ __forceinline__ void copyOperandTile(float* tile, const float* __restrict__ m, int64_t ld, int64_t rows,
                                                int64_t depth, int64_t row0, int64_t k0) {
  const uint32_t base = ptx::sharedAddress(tile);
#pragma unroll
  for (int s = 0; s < kChunksPerThread; ++s) {
    const RowChunk at = loaderChunk(threadIdx.x, s);
    const int64_t row = row0 + at.row;
    const int64_t k = k0 + at.chunk * kChunkFloats;
    const int valid = row < rows ? validFloats(k, depth) : 0;
    const float* from = valid > 0 ? m + row * ld + k : m;
    const uint32_t to = base + sizeof(float) * chunkOffset(at.row, at.chunk);
    if (kVector) {
      ptx::copy16(to, from, valid * static_cast<int>(sizeof(float)));
    } else {
#pragma unroll
      for (int e = 0; e < kChunkFloats; ++e) {
        ptx::copy4(to + sizeof(float) * e, e < valid ? from + e : m, e < valid ? static_cast<int>(sizeof(float)) : 0);
      }
    }
  }
}

template <bool kVector>
__device__ __forceinline__ void copyStage(float* stage, const float* __restrict__ a, int64_t lda, int64_t rows,
                                          const float* __restrict__ b, int64_t ldb, int64_t n, int64_t k,
                                          int64_t row0, int64_t col0, int64_t k0) {
  copyOperandTile<kVector>(stage, a, lda, rows, k, row0, k0);
  copyOperandTile<kVector>(stage + kOperandFloats, b, ldb, n, k, col0, k0);
}

// Rounds to nearest TF32 the chunks of one stage that this thread copied (after its wait for
// them, before the barrier).
__device__ __forceinline__ void roundCopiedChunks(float* stage) {
#pragma unroll
  for (int operand = 0; operand < 2; ++operand) {
#pragma unroll
    for (int s = 0; s < kChunksPerThread; ++s) {
      const RowChunk at = loaderChunk(threadIdx.x, s);
      float4* chunk = reinterpret_cast<float4*>(stage + operand * kOperandFloats + chunkOffset(at.row, at.chunk));
      float4 v = *chunk;
      v.x = ptx::roundToTf32(v.x);
      v.y = ptx::roundToTf32(v.y);
      v.z = ptx::roundToTf32(v.z);
      v.w = ptx::roundToTf32(v.w);
      *chunk = v;
    }
  }
}

// One stage (32 of k) of this warp's 64 x 32 part of the tile: 4 x 4 fragments of 16 x 8.
__device__ __forceinline__ void multiplyStage(const float* stage, int warp, int lane, float (&acc)[4][4][4]) {
  const uint32_t aBase = ptx::sharedAddress(stage);
  const uint32_t bBase = ptx::sharedAddress(stage + kOperandFloats);
  // Unrolled twice, not four times: fully unrolled, the compiler loads every step's fragments
  // up front and spills past 128 registers.
#pragma unroll 2
  for (int ks = 0; ks < kTileDepth / 8; ++ks) {
    uint32_t fa[4][4], fb[4][2];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const RowChunk at = aFragmentRow(warp, i, ks, lane);
      ptx::loadMatrices(fa[i], aBase + sizeof(float) * chunkOffset(at.row, at.chunk));
    }
#pragma unroll
    for (int jj = 0; jj < 2; ++jj) {
      const RowChunk at = bFragmentRow(warp, jj, ks, lane);
      uint32_t r[4];
      ptx::loadMatrices(r, bBase + sizeof(float) * chunkOffset(at.row, at.chunk));
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const FragmentRegister target = bRegisterTarget(jj, q);
        fb[target.fragment][target.index] = r[q];
      }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) ptx::multiplyAccumulateTf32(acc[i][j], fa[i], fb[j]);
  }
}

template <bool kVector>
__global__ void __launch_bounds__(kThreads, 2)
    encoderTf32Kernel(const float* __restrict__ a, int64_t lda, int64_t rows, const float* __restrict__ b,
                               int64_t ldb, int64_t n, int64_t k, ActiveUnitsOut out) {
  float* shared = ptx::dynamicShared();
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kTileRows;
  const int64_t kTiles = (k + kTileDepth - 1) / kTileDepth;

  for (int64_t tileIndex = blockIdx.y; tileIndex < out.tiles; tileIndex += gridDim.y) {
    const int64_t col0 = tileIndex * kTileRows;
    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

    // Every thread commits one group per stage, empty past the last step, so that "group kt
    // is done" is always "at most kPipelineStages - 2 groups are pending" after kt + kPipelineStages - 1 commits.
#pragma unroll
    for (int s = 0; s < kPipelineStages - 1; ++s) {
      if (s < kTiles) copyStage<kVector>(shared + s * kStageFloats, a, lda, rows, b, ldb, n, k, row0, col0, s * kTileDepth);
      ptx::commitCopies();
    }
    for (int64_t kt = 0; kt < kTiles; ++kt) {
      ptx::waitCopies<kPipelineStages - 2>();
      roundCopiedChunks(shared + (kt % kPipelineStages) * kStageFloats);
      // After the barrier every thread's copies for step kt are rounded and visible, and every
      // warp has finished step kt - 1, whose stage the next copy overwrites.
      __syncthreads();
      const int64_t next = kt + kPipelineStages - 1;
      if (next < kTiles) {
        copyStage<kVector>(shared + (next % kPipelineStages) * kStageFloats, a, lda, rows, b, ldb, n, k, row0, col0,
                           next * kTileDepth);
      }
      ptx::commitCopies();
      multiplyStage(shared + (kt % kPipelineStages) * kStageFloats, warp, lane, acc);
    }
    ptx::waitCopies<0>();  // only empty groups remain; nothing may still be writing shared memory
    __syncthreads();  // every warp is done reading the stages the finished tile replaces

    float* tile = shared;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int e = 2 * half;
          const int at = accumulatorRow(warp, i, lane, e) * kEpilogueLd + accumulatorCol(warp, j, lane, e);
          *reinterpret_cast<float2*>(tile + at) = make_float2(acc[i][j][e], acc[i][j][e + 1]);
        }
    __syncthreads();
    compactTile<kEpilogueLd>(tile, row0, rows, col0, n, tileIndex, out);
    __syncthreads();  // the next column tile's copies overwrite the tile
  }
}

}  // namespace tf32
}  // namespace saekit::cuda
