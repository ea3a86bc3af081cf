#include "gemm.cuh"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common.cuh"
#include "gemm_tile.cuh"

namespace saekit::cuda {
namespace {

// The pipelined TF32 kernel (gemm_tf32_pipelined.cu) has not yet run on a GPU; until the parity
// suite and the benchmark have run it there, it is used only when asked for. Read at every
// product (once a step) so that a test can switch it.
bool pipelinedTf32Requested() {
  const char* kernel = std::getenv("SAEKIT_CUDA_TF32_KERNEL");
  return kernel != nullptr && std::strcmp(kernel, "pipelined") == 0;
}

}  // namespace

void encoderProduct(GemmPrecision precision, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                    int64_t n, int64_t k, const ActiveUnitsOut& out, cudaStream_t stream, int64_t maxColumnBlocks) {
  if (rows <= 0) return;
  // Row tiles along x, so that the blocks running at once share column tiles of b: a batch of
  // rows stays in L2 while each block of W_enc is read from memory about once.
  const dim3 grid(static_cast<unsigned>(ceilDiv(rows, kGemmTileM)),
                  static_cast<unsigned>(std::min({out.tiles, maxColumnBlocks, kMaxGridY})));
  if (precision == GemmPrecision::Tf32 && pipelinedTf32Requested()) {
    launchEncoderTf32Pipelined(grid, a, lda, rows, b, ldb, n, k, out, stream);
  } else if (precision == GemmPrecision::Tf32) {
    launchEncoderTf32(grid, a, lda, rows, b, ldb, n, k, out, stream);
  } else {
    launchEncoderFp32(grid, a, lda, rows, b, ldb, n, k, out, stream);
  }
}

}  // namespace saekit::cuda
