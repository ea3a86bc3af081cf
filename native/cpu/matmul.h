// A plain matrix product on the blocked GEMM, for work done once per data set (covariances,
// whitening) rather than per training step.
#pragma once

#include <cstdint>

namespace saekit::cpu {

// c [m, n] = op(a) b, where op(a) is a [m, k] or, when `transposeA`, the transpose of a
// stored [k, m]; b is [k, n]. All row-major. Runs on `threads` threads; each element is summed
// in an order fixed by the GEMM's depth blocking, so the result does not depend on `threads`.
void multiply(const float* a, bool transposeA, const float* b, int64_t m, int64_t k, int64_t n, float* c,
              int threads);

}  // namespace saekit::cpu
