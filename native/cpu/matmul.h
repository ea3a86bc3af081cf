// Matrix products on the blocked GEMM for work done once per call rather than per training
// step: covariances and whitening (RICA's patches), and the cosine similarities behind the
// recovery metrics.
#pragma once

#include <cstdint>

namespace saekit::cpu {

// c [m, n] = op(a) op(b), all row-major. op(a) is a [m, k], or the transpose of a stored
// [k, m] when `transposeA`; op(b) is b [k, n], or the transpose of b stored [n, k] when
// `transposeB`. Each element is summed in an order fixed by the GEMM's depth blocking, so the
// result does not depend on `threads`.
void multiply(const float* a, bool transposeA, const float* b, bool transposeB, int64_t m, int64_t k, int64_t n,
              float* c, int threads);

// out[i * bRows + j] = cos(a_i, b_j) for the rows of a [aRows, cols] and b [bRows, cols],
// clamped to [-1, 1]; a zero row has cosine 0 with everything.
void cosineSimilarity(const float* a, int64_t aRows, const float* b, int64_t bRows, int64_t cols, float* out,
                      int threads);

}  // namespace saekit::cpu
