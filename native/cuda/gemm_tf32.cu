// Launches the TF32 encoder kernel (gemm_tf32.cuh).
#include "common.cuh"
#include "gemm_tf32.cuh"

namespace saekit::cuda {
namespace {

using namespace tf32;

template <bool kVector>
void launch(dim3 grid, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb, int64_t n, int64_t k,
            const ActiveUnitsOut& out, cudaStream_t stream) {
  const auto kernel = encoderTf32Kernel<kVector>;
  SAEKIT_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kTf32SharedBytes)));
  // Two blocks of 96 KB (sm_90) need the largest shared-memory carve-out of the SM's on-chip
  // memory; elsewhere it costs L1 that this kernel hardly uses (cp.async.cg bypasses it).
  SAEKIT_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
  kernel<<<grid, kThreads, kTf32SharedBytes, stream>>>(a, lda, rows, b, ldb, n, k, out);
  SAEKIT_CUDA_LAUNCHED();
}

}  // namespace

void launchEncoderTf32(dim3 grid, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                                int64_t n, int64_t k, const ActiveUnitsOut& out, cudaStream_t stream) {
  if (sixteenByteRows(a, lda) && sixteenByteRows(b, ldb)) {
    launch<true>(grid, a, lda, rows, b, ldb, n, k, out, stream);
  } else {
    launch<false>(grid, a, lda, rows, b, ldb, n, k, out, stream);
  }
}

}  // namespace saekit::cuda
