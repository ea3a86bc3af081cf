// The encoder product on tensor cores: TF32 inputs (10-bit mantissa, rounded to nearest),
// FP32 accumulation, through the WMMA API (m16n16k8), whose fragment layouts the compiler owns.
// Same tiles and staging as the FP32 kernel; the 8 warps split the 128 x 128 tile 2 x 4, each
// warp 64 x 32 = 4 x 2 fragments of 16 x 16.
#include <mma.h>

#include "common.cuh"
#include "gemm_tile.cuh"
#include "ptx.cuh"

namespace saekit::cuda {
namespace {

using namespace nvcuda;

// wmma loads need a stride that is a multiple of 4 floats and fragment starts 32-byte
// aligned: rows 16 apart and k 8 apart are, with 36. 36 rather than 40: consecutive rows then
// start 4 banks apart, so the 8 rows of a fragment load fall in distinct banks (with 40, rows 4
// apart share banks).
constexpr int kLd = kGemmTileK + 4;
constexpr int kStage = kGemmTileM * kLd;
constexpr size_t kSharedBytes =
    sizeof(float) * (4 * kStage > kGemmTileM * kGemmLdC ? 4 * kStage : kGemmTileM * kGemmLdC);
static_assert(kLd % 4 == 0 && (16 * kLd * sizeof(float)) % 32 == 0 && kGemmLdC % 8 == 0 &&
                  (kStage * sizeof(float)) % 32 == 0,
              "wmma alignment");

using FragmentA = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using FragmentB = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major>;
using Accumulator = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;

// Rounded to TF32 once, on the way into shared memory, rather than at every fragment load
// (several warps load each value); fragments of rounded values are what mma_sync expects.
__device__ __forceinline__ void storeTf32Tile(float* tile, float (&v)[kStageValues]) {
#pragma unroll
  for (int s = 0; s < kStageValues; ++s) v[s] = wmma::__float_to_tf32(v[s]);
  storeTile<kLd>(tile, v);
}

__global__ void __launch_bounds__(kGemmThreads) encoderTf32Kernel(const float* __restrict__ a, int64_t lda,
                                                                   int64_t rows, const float* __restrict__ b,
                                                                   int64_t ldb, int64_t n, int64_t k,
                                                                   ActiveUnitsOut out) {
  float* shared = ptx::dynamicShared();
  float* as = shared;               // [2][128][kLd]: a[row][k], row-major for matrix_a
  float* bs = shared + 2 * kStage;  // [2][128][kLd]: b[col][k], i.e. column-major k x n for matrix_b
  const int warp = threadIdx.x >> 5;
  const int warpRow = (warp >> 2) * 64;  // 0 or 64
  const int warpCol = (warp & 3) * 32;   // 0, 32, 64 or 96
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kGemmTileM;
  const int64_t kTiles = (k + kGemmTileK - 1) / kGemmTileK;

  for (int64_t tileIndex = blockIdx.y; tileIndex < out.tiles; tileIndex += gridDim.y) {
    const int64_t col0 = tileIndex * kGemmTileN;
    Accumulator acc[4][2];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    float stageA[kStageValues], stageB[kStageValues];
    loadTile(stageA, a, lda, rows, k, row0, 0);
    loadTile(stageB, b, ldb, n, k, col0, 0);
    storeTf32Tile(as, stageA);
    storeTf32Tile(bs, stageB);
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
#pragma unroll
      for (int ks = 0; ks < kGemmTileK; ks += 8) {
        FragmentA fa[4];
        FragmentB fb[2];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          wmma::load_matrix_sync(fa[i], at + (warpRow + 16 * i) * kLd + ks, kLd);
        }
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          wmma::load_matrix_sync(fb[j], bt + (warpCol + 16 * j) * kLd + ks, kLd);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
      if (more) {
        storeTf32Tile(as + (buffer ^ 1) * kStage, stageA);
        storeTf32Tile(bs + (buffer ^ 1) * kStage, stageB);
      }
      __syncthreads();
    }

    float* tile = shared;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::store_matrix_sync(tile + (warpRow + 16 * i) * kGemmLdC + warpCol + 16 * j, acc[i][j], kGemmLdC,
                                wmma::mem_row_major);
      }
    __syncthreads();
    compactTile(tile, row0, rows, col0, n, tileIndex, out);
    __syncthreads();
  }
}

}  // namespace

void launchEncoderTf32(dim3 grid, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb, int64_t n,
                       int64_t k, const ActiveUnitsOut& out, cudaStream_t stream) {
  SAEKIT_CUDA_CHECK(cudaFuncSetAttribute(encoderTf32Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(kSharedBytes)));
  encoderTf32Kernel<<<grid, kGemmThreads, kSharedBytes, stream>>>(a, lda, rows, b, ldb, n, k, out);
  SAEKIT_CUDA_LAUNCHED();
}

}  // namespace saekit::cuda
