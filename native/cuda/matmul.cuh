// Dense matrix products on the GPU in FP32, for the models whose every product is dense
// (RICA). The same tiles and main loop as the SAE's FP32 encoder kernel (gemm_tile.cuh), with a
// plain store (or accumulate) as the epilogue. All pointers are device memory.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace saekit::cuda {

// c [m, n] = op(a) op(b) (+ c when `accumulate`), all row-major. op(a) is a [m, k], or the
// transpose of a stored [k, m] when `transposeA`; op(b) is b [k, n], or the transpose of b
// stored [n, k] when `transposeB` (the arguments of cpu::multiply). Each element is one
// sequential chain of fmaf over k.
void multiply(const float* a, bool transposeA, const float* b, bool transposeB, int64_t m, int64_t k, int64_t n,
              float* c, bool accumulate, cudaStream_t stream);

}  // namespace saekit::cuda
