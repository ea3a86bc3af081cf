#include "matmul.cuh"

#include <algorithm>

#include "common.cuh"
#include "gemm_tile.cuh"
#include "ptx.cuh"

namespace saekit::cuda {
namespace {

constexpr size_t kSharedBytes = sizeof(float) * kFp32SharedFloats;

// The product's rows are op(a)'s; its columns are op(b)'s, which the main loop reads as rows
// of b^T: K-contiguous when b is stored transposed [n, k].
template <bool kAKContiguous, bool kBKContiguous>
__global__ void __launch_bounds__(kGemmThreads) multiplyKernel(const float* __restrict__ a, int64_t lda,
                                                                const float* __restrict__ b, int64_t ldb, int64_t m,
                                                                int64_t k, int64_t n, float* __restrict__ c,
                                                                bool accumulate) {
  float* shared = ptx::dynamicShared();
  const int tx = threadIdx.x & 15;
  const int ty = threadIdx.x >> 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kGemmTileM;
  const int64_t tiles = (n + kGemmTileN - 1) / kGemmTileN;
  for (int64_t tileIndex = blockIdx.y; tileIndex < tiles; tileIndex += gridDim.y) {
    const int64_t col0 = tileIndex * kGemmTileN;
    float acc[8][8];
    fp32TileProduct<kAKContiguous, kBKContiguous>(shared, a, lda, m, b, ldb, n, k, row0, col0, acc);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t row = row0 + ty + 16 * i;
      if (row >= m) continue;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int64_t col = col0 + tx + 16 * j;
        if (col < n) c[row * n + col] = accumulate ? c[row * n + col] + acc[i][j] : acc[i][j];
      }
    }
    // fp32TileProduct ended at a barrier and the epilogue does not touch shared memory.
  }
}

template <bool kAKContiguous, bool kBKContiguous>
void launch(dim3 grid, const float* a, int64_t lda, const float* b, int64_t ldb, int64_t m, int64_t k, int64_t n,
            float* c, bool accumulate, cudaStream_t stream) {
  auto kernel = multiplyKernel<kAKContiguous, kBKContiguous>;
  SAEKIT_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSharedBytes)));
  kernel<<<grid, kGemmThreads, kSharedBytes, stream>>>(a, lda, b, ldb, m, k, n, c, accumulate);
  SAEKIT_CUDA_LAUNCHED();
}

}  // namespace

void multiply(const float* a, bool transposeA, const float* b, bool transposeB, int64_t m, int64_t k, int64_t n,
              float* c, bool accumulate, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) SAEKIT_CUDA_CHECK(cudaMemsetAsync(c, 0, static_cast<size_t>(m * n) * sizeof(float), stream));
    return;
  }
  const dim3 grid(static_cast<unsigned>(ceilDiv(m, kGemmTileM)),
                  static_cast<unsigned>(std::min<int64_t>(ceilDiv(n, kGemmTileN), kMaxGridY)));
  // a [m, k] is K-contiguous with lda = k; a stored [k, m] has lda = m. b stored [n, k] (its
  // transpose) is K-contiguous with ldb = k; b [k, n] has ldb = n.
  const int64_t lda = transposeA ? m : k;
  const int64_t ldb = transposeB ? k : n;
  if (!transposeA && transposeB) launch<true, true>(grid, a, lda, b, ldb, m, k, n, c, accumulate, stream);
  if (!transposeA && !transposeB) launch<true, false>(grid, a, lda, b, ldb, m, k, n, c, accumulate, stream);
  if (transposeA && transposeB) launch<false, true>(grid, a, lda, b, ldb, m, k, n, c, accumulate, stream);
  if (transposeA && !transposeB) launch<false, false>(grid, a, lda, b, ldb, m, k, n, c, accumulate, stream);
}

}  // namespace saekit::cuda
