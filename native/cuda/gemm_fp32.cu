// The encoder product in plain FP32 on the CUDA cores: 128 x 128 tiles, k in steps of 32
// staged through shared memory with the next step's loads in flight, each thread an 8 x 8
// block of the tile. Each output is one sequential chain of fmaf over k, so the only
// difference from an exact dot product in float is the order the CPU's blocked kernel uses.
#include "common.cuh"
#include "gemm_tile.cuh"

namespace saekit::cuda {
namespace {

// Odd stride: the 16 different rows a warp reads at one k fall in 16 different banks.
constexpr int kLd = kGemmTileK + 1;
constexpr int kStage = kGemmTileM * kLd;  // floats per operand per buffer
constexpr size_t kSharedBytes =
    sizeof(float) * (4 * kStage > kGemmTileM * kGemmLdC ? 4 * kStage : kGemmTileM * kGemmLdC);

__global__ void __launch_bounds__(kGemmThreads) encoderFp32Kernel(const float* __restrict__ a, int64_t lda,
                                                                   int64_t rows, const float* __restrict__ b,
                                                                   int64_t ldb, int64_t n, int64_t k,
                                                                   ActiveUnitsOut out) {
  extern __shared__ __align__(128) float shared[];
  float* as = shared;               // [2][128][kLd]: rows of a
  float* bs = shared + 2 * kStage;  // [2][128][kLd]: rows of b (columns of the product)
  // Thread (tx, ty) owns rows ty + 16 i and columns tx + 16 j of the tile (i, j < 8).
  const int tx = threadIdx.x & 15;
  const int ty = threadIdx.x >> 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kGemmTileM;
  const int64_t kTiles = (k + kGemmTileK - 1) / kGemmTileK;

  for (int64_t tileIndex = blockIdx.y; tileIndex < out.tiles; tileIndex += gridDim.y) {
    const int64_t col0 = tileIndex * kGemmTileN;
    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

    float stageA[kStageValues], stageB[kStageValues];
    loadTile(stageA, a, lda, rows, k, row0, 0);
    loadTile(stageB, b, ldb, n, k, col0, 0);
    storeTile<kLd>(as, stageA);
    storeTile<kLd>(bs, stageB);
    __syncthreads();
    for (int64_t kt = 0; kt < kTiles; ++kt) {
      const int buffer = static_cast<int>(kt & 1);
      const bool more = kt + 1 < kTiles;
      if (more) {
        loadTile(stageA, a, lda, rows, k, row0, (kt + 1) * kGemmTileK);
        loadTile(stageB, b, ldb, n, k, col0, (kt + 1) * kGemmTileK);
      }
      const float* at = as + buffer * kStage;
      const float* bt = bs + buffer * kStage;
#pragma unroll 4
      for (int kk = 0; kk < kGemmTileK; ++kk) {
        float av[8], bv[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) av[i] = at[(ty + 16 * i) * kLd + kk];
#pragma unroll
        for (int j = 0; j < 8; ++j) bv[j] = bt[(tx + 16 * j) * kLd + kk];
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
      // The other buffer was last read in step kt - 1, which every warp finished before the
      // barrier that ended it.
      if (more) {
        storeTile<kLd>(as + (buffer ^ 1) * kStage, stageA);
        storeTile<kLd>(bs + (buffer ^ 1) * kStage, stageB);
      }
      __syncthreads();
    }

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
