#include "sae_resample.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "error.h"
#include "rng.h"

namespace saekit {

void checkResampleFeatures(const int32_t* features, int64_t count, int64_t dHidden) {
  for (int64_t i = 0; i < count; ++i) {
    if (features[i] < 0 || features[i] >= dHidden) {
      throwRangeError("Expected features to be in [0, " + std::to_string(dHidden) + ") but features[" +
                      std::to_string(i) + "] is " + std::to_string(features[i]));
    }
  }
}

std::vector<int64_t> chooseResampleRows(const float* x, const float* xhat, int64_t rows, int64_t d, int64_t count,
                                        uint64_t seed) {
  std::vector<double> error(static_cast<size_t>(rows));
  bool anyError = false;
  for (int64_t r = 0; r < rows; ++r) {
    double e = 0.0;
    for (int64_t i = 0; i < d; ++i) e += static_cast<double>(x[r * d + i] - xhat[r * d + i]) * (x[r * d + i] - xhat[r * d + i]);
    error[r] = e;
    anyError = anyError || e > 0.0;
  }
  Rng rng(seed);
  std::vector<std::pair<double, int64_t>> keys(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double u;
    do {
      u = rng.uniform();
    } while (u <= 0.0);
    const double weight = anyError ? error[r] : 1.0;
    keys[r] = {weight > 0.0 ? std::log(u) / weight : -std::numeric_limits<double>::infinity(), r};
  }
  const int64_t n = std::min(count, rows);
  std::partial_sort(keys.begin(), keys.begin() + n, keys.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  std::vector<int64_t> chosen(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) chosen[i] = keys[i].second;
  return chosen;
}

float resampleEncoderScale(const float* squaredNorms, int64_t dHidden, const int32_t* features, int64_t count) {
  std::vector<char> listed(static_cast<size_t>(dHidden), 0);
  for (int64_t i = 0; i < count; ++i) listed[features[i]] = 1;
  double aliveNorm = 0.0;
  int64_t alive = 0;
  for (int64_t j = 0; j < dHidden; ++j) {
    if (listed[j]) continue;
    aliveNorm += std::sqrt(static_cast<double>(squaredNorms[j]));
    ++alive;
  }
  return static_cast<float>(0.2 * (alive > 0 ? aliveNorm / alive : 1.0));
}

}  // namespace saekit
