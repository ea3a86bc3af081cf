#include "matmul.h"

#include <algorithm>
#include <cmath>

#include "../core/buffer.h"
#include "../core/thread_pool.h"
#include "gemm.h"
#include "kernels.h"

namespace saekit::cpu {
namespace {

// Rows scaled to unit norm (in double precision); a zero row stays zero.
Buffer<float> unitRows(const float* m, int64_t rows, int64_t cols) {
  Buffer<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = m + r * cols;
    double norm2 = 0.0;
    for (int64_t c = 0; c < cols; ++c) norm2 += static_cast<double>(src[c]) * src[c];
    const double scale = norm2 > 0.0 ? 1.0 / std::sqrt(norm2) : 0.0;
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = static_cast<float>(src[c] * scale);
  }
  return out;
}

}  // namespace

void multiply(const float* a, bool transposeA, const float* b, bool transposeB, int64_t m, int64_t k, int64_t n,
              float* c, int threads) {
  const Kernels& set = kernels();
  ThreadPool pool(std::max(threads, 1));
  PackedB packed;
  if (transposeB) {
    packB(set, pool, b, k, Layout::RowsAreColumnsOfC, n, k, packed);
  } else {
    packB(set, pool, b, n, Layout::RowsAreK, n, k, packed);
  }
  GemmScratch scratch;
  gemm(set, pool, scratch, OperandA{a, transposeA ? m : k, transposeA}, m, packed, c, n,
       chooseRowBlocking(m, pool.size(), set.mr), [](int, int64_t, int64_t, int64_t, float*, int64_t) {});
}

void cosineSimilarity(const float* a, int64_t aRows, const float* b, int64_t bRows, int64_t cols, float* out,
                      int threads) {
  if (aRows <= 0 || bRows <= 0) return;
  const Buffer<float> unitA = unitRows(a, aRows, cols);
  const Buffer<float> unitB = unitRows(b, bRows, cols);
  multiply(unitA.data(), false, unitB.data(), true, aRows, cols, bRows, out, threads);
  // Rounding can carry the cosine of parallel unit vectors just past 1.
  for (int64_t i = 0; i < aRows * bRows; ++i) out[i] = std::min(1.0f, std::max(-1.0f, out[i]));
}

}  // namespace saekit::cpu
