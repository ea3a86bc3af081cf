// Cosine similarities between two sets of directions: the core of the recovery metrics
// (mmcs, mcc, recoveredFraction), which all reduce this one matrix.
#pragma once

#include <cstdint>

namespace saekit {

// out[i * bRows + j] = cos(a_i, b_j) for the rows of a [aRows, cols] and b [bRows, cols],
// clamped to [-1, 1]; a zero row has cosine 0 with everything.
void cosineSimilarityCpu(const float* a, int64_t aRows, const float* b, int64_t bRows, int64_t cols, float* out,
                         int threads);

}  // namespace saekit
