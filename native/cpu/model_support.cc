#include "model_support.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/checks.h"
#include "../core/error.h"
#include "../core/rng.h"

namespace saekit::cpu {

const Kernels& requireKernels(const std::string& name) {
  const Kernels* set = kernelsNamed(name);
  if (set == nullptr) throwRangeError("CPU kernel set '" + name + "' is not available on this CPU");
  return *set;
}

void checkFiniteParallel(ThreadPool& pool, const Kernels& kernels, const float* x, int64_t count, int64_t cols,
                         const std::string& name) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  std::vector<int64_t> firstBad(static_cast<size_t>(chunks), -1);
  pool.run(static_cast<size_t>(chunks), [&](size_t task, int) {
    const int64_t i0 = static_cast<int64_t>(task) * kChunk;
    const int64_t n = std::min(kChunk, count - i0);
    const int64_t bad = kernels.firstNonFinite(x + i0, n);
    if (bad < n) firstBad[task] = i0 + bad;
  });
  for (int64_t bad : firstBad) {
    if (bad >= 0) throwNonFinite(name, x[bad], bad, cols);
  }
}

void randomUnitRows(ThreadPool& pool, float* rows, int64_t count, int64_t width, uint64_t seed) {
  constexpr int64_t kChunk = 32;
  pool.run(static_cast<size_t>((count + kChunk - 1) / kChunk), [&](size_t task, int) {
    const int64_t j1 = std::min(count, static_cast<int64_t>(task + 1) * kChunk);
    for (int64_t j = static_cast<int64_t>(task) * kChunk; j < j1; ++j) {
      Rng rng(seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(j));
      float* row = rows + j * width;
      double norm = 0.0;
      for (int64_t i = 0; i < width; ++i) {
        const double value = rng.normal();
        row[i] = static_cast<float>(value);
        norm += value * value;
      }
      const float scale = norm > 0.0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
      for (int64_t i = 0; i < width; ++i) row[i] *= scale;
    }
  });
}

void denseToRows(const float* dense, int64_t count, int64_t cols, CodeRows& rows) {
  rows.start.resize(static_cast<size_t>(count + 1));
  int64_t* start = rows.start.data();
  start[0] = 0;
  for (int64_t r = 0; r < count; ++r) {
    int64_t nonzeros = 0;
    const float* row = dense + r * cols;
    for (int64_t j = 0; j < cols; ++j) nonzeros += row[j] != 0.0f;
    start[r + 1] = start[r] + nonzeros;
  }
  rows.index.resize(static_cast<size_t>(start[count]));
  rows.value.resize(static_cast<size_t>(start[count]));
  for (int64_t r = 0; r < count; ++r) {
    int64_t e = start[r];
    const float* row = dense + r * cols;
    for (int64_t j = 0; j < cols; ++j) {
      if (row[j] != 0.0f) {
        rows.index[e] = static_cast<int32_t>(j);
        rows.value[e++] = row[j];
      }
    }
  }
}

}  // namespace saekit::cpu
