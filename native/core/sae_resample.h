// The backend-neutral half of resampling dead features (SaeBackend::resample): checking the
// feature list and choosing the rows, so that every backend resamples from the same rows.
#pragma once

#include <cstdint>
#include <vector>

namespace saekit {

// Throws a RangeError naming the first feature outside [0, dHidden).
void checkResampleFeatures(const int32_t* features, int64_t count, int64_t dHidden);

// Draws min(count, rows) rows of x [rows, d] without replacement, with probability
// proportional to each row's squared reconstruction error ||x - xhat||^2 (Efraimidis &
// Spirakis: the rows with the largest log(u) / weight; rows with zero error come after all
// others, and all rows weigh alike when none has an error). Returns them in draw order.
std::vector<int64_t> chooseResampleRows(const float* x, const float* xhat, int64_t rows, int64_t d, int64_t count,
                                        uint64_t seed);

// 0.2 times the mean norm of the encoder directions of the features not being resampled
// (squaredNorms [dHidden]), the scale of a resampled encoder direction; 0.2 when all are.
float resampleEncoderScale(const float* squaredNorms, int64_t dHidden, const int32_t* features, int64_t count);

}  // namespace saekit
