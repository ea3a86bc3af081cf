// The encoder product in plain FP32 on the CUDA cores: the shared FP32 main loop
// (gemm_tile.cuh), then the compaction epilogue. Each output is one sequential chain of fmaf
// over k, so the only difference from an exact dot product in float is the order the CPU's
// blocked kernel uses.
#include "common.cuh"
#include "gemm_tile.cuh"
#include "ptx.cuh"

namespace saekit::cuda {
namespace {

constexpr size_t kSharedBytes = sizeof(float) * kFp32SharedFloats;

__global__ void __launch_bounds__(kGemmThreads) encoderFp32Kernel(const float* __restrict__ a, int64_t lda,
                                                                   int64_t rows, const float* __restrict__ b,
                                                                   int64_t ldb, int64_t n, int64_t k,
                                                                   ActiveUnitsOut out) {
  float* shared = ptx::dynamicShared();
  const int tx = threadIdx.x & 15;
  const int ty = threadIdx.x >> 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kGemmTileM;
  for (int64_t tileIndex = blockIdx.y; tileIndex < out.tiles; tileIndex += gridDim.y) {
    const int64_t col0 = tileIndex * kGemmTileN;
    float acc[8][8];
    fp32TileProduct<true, true>(shared, a, lda, rows, b, ldb, n, k, row0, col0, acc);
    // The finished tile takes the place of the staging buffers (all reads ended at the barrier).
    float* tile = shared;
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) tile[(ty + 16 * i) * kGemmLdC + tx + 16 * j] = acc[i][j];
    __syncthreads();
    compactTile(tile, row0, rows, col0, n, tileIndex, out);
    __syncthreads();  // the next column tile's staging overwrites the tile
  }
}

}  // namespace

void launchEncoderFp32(dim3 grid, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb, int64_t n,
                       int64_t k, const ActiveUnitsOut& out, cudaStream_t stream) {
  SAEKIT_CUDA_CHECK(cudaFuncSetAttribute(encoderFp32Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(kSharedBytes)));
  encoderFp32Kernel<<<grid, kGemmThreads, kSharedBytes, stream>>>(a, lda, rows, b, ldb, n, k, out);
  SAEKIT_CUDA_LAUNCHED();
}

}  // namespace saekit::cuda
