#include "gemm.cuh"

#include <algorithm>

#include "common.cuh"
#include "gemm_tile.cuh"

namespace saekit::cuda {

void encoderProduct(GemmPrecision precision, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                    int64_t n, int64_t k, const ActiveUnitsOut& out, cudaStream_t stream, int64_t maxColumnBlocks) {
  if (rows <= 0) return;
  // Row tiles along x, so that the blocks running at once share column tiles of b: a batch of
  // rows stays in L2 while each block of W_enc is read from memory about once.
  const dim3 grid(static_cast<unsigned>(ceilDiv(rows, kGemmTileM)),
                  static_cast<unsigned>(std::min({out.tiles, maxColumnBlocks, kMaxGridY})));
  if (precision == GemmPrecision::Tf32) {
    launchEncoderTf32(grid, a, lda, rows, b, ldb, n, k, out, stream);
  } else {
    launchEncoderFp32(grid, a, lda, rows, b, ldb, n, k, out, stream);
  }
}

}  // namespace saekit::cuda
