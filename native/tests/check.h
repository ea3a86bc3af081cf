// What the native test programs share (native_tests, cuda_tests, cuda_emulated_tests): CHECK,
// which counts checks and failures and prints each failure with its place, and the check of an
// encoder product's compacted units (cuda/gemm.cuh's ActiveUnitsOut) against double sums.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace saekit::testing {

inline int failures = 0;
inline int checks = 0;

}  // namespace saekit::testing

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    ++::saekit::testing::checks;                                           \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                   \
      std::fprintf(stderr, "\n");                                          \
      ++::saekit::testing::failures;                                       \
    }                                                                      \
  } while (0)

namespace saekit::testing {

// Units listed wrongly by an encoder product of a ([rows, ld], from aStart) and b ([n, ld]) over
// depth k plus bias, compacted per row and column tile of tileColumns: a unit clearly above zero
// (beyond tolerance times the row's largest |z|) missing, one clearly below listed, a value off,
// or a tile's units out of column order or outside the tile. tolerance 0: exact.
inline int productMisses(const float* aStart, const float* b, const float* bias, int64_t rows, int64_t n, int64_t k,
                         int64_t ld, int64_t tileColumns, const int32_t* counts, const int64_t* positions,
                         const float* values, const int32_t* indices, double tolerance) {
  const int64_t tiles = (n + tileColumns - 1) / tileColumns;
  int misses = 0;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> z(static_cast<size_t>(n));
    double scale = 0;
    for (int64_t j = 0; j < n; ++j) {
      double sum = bias[j];
      for (int64_t q = 0; q < k; ++q) sum += static_cast<double>(aStart[r * ld + q]) * b[j * ld + q];
      z[j] = sum;
      scale = std::max(scale, std::fabs(sum));
    }
    std::vector<char> listed(static_cast<size_t>(n), 0);
    for (int64_t t = 0; t < tiles; ++t) {
      const int32_t count = counts[r * tiles + t];
      const int64_t at = positions[r * tiles + t];
      int32_t previous = -1;
      for (int32_t e = 0; e < count; ++e) {
        const int32_t j = indices[at + e];
        if (j < t * tileColumns || j >= std::min((t + 1) * tileColumns, n) || j <= previous) {
          ++misses;
          continue;
        }
        previous = j;
        listed[j] = 1;
        if (std::fabs(values[at + e] - z[j]) > tolerance * scale || z[j] < -tolerance * scale) ++misses;
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      if (!listed[j] && z[j] > tolerance * scale) ++misses;
    }
  }
  return misses;
}

}  // namespace saekit::testing
