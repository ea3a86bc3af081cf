// Rows are normalised in double precision, then one blocked matrix product gives every cosine:
// 2 * aRows * bRows * cols flops on the SIMD kernels instead of a scalar triple loop.
#include <algorithm>
#include <cmath>

#include "../core/buffer.h"
#include "../core/similarity.h"
#include "../core/thread_pool.h"
#include "gemm.h"
#include "kernels.h"

namespace saekit {
namespace {

void unitRows(const float* m, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = m + r * cols;
    double norm2 = 0.0;
    for (int64_t c = 0; c < cols; ++c) norm2 += static_cast<double>(src[c]) * src[c];
    const double scale = norm2 > 0.0 ? 1.0 / std::sqrt(norm2) : 0.0;
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = static_cast<float>(src[c] * scale);
  }
}

}  // namespace

void cosineSimilarityCpu(const float* a, int64_t aRows, const float* b, int64_t bRows, int64_t cols, float* out,
                         int threads) {
  if (aRows <= 0 || bRows <= 0) return;
  const cpu::Kernels& kernels = cpu::kernels();
  Buffer<float> unitA(static_cast<size_t>(aRows * cols));
  Buffer<float> unitB(static_cast<size_t>(bRows * cols));
  unitRows(a, aRows, cols, unitA.data());
  unitRows(b, bRows, cols, unitB.data());
  ThreadPool pool(std::max(threads, 1));
  cpu::PackedB packed;
  cpu::packB(kernels, pool, unitB.data(), cols, cpu::Layout::RowsAreColumnsOfC, bRows, cols, packed);
  cpu::GemmScratch scratch;
  cpu::gemm(kernels, pool, scratch, cpu::OperandA{unitA.data(), cols}, aRows, packed, out, bRows,
            cpu::chooseRowBlocking(aRows, pool.size(), kernels.mr),
            [bRows](int, int64_t, int64_t, int64_t rows, float* c, int64_t ldc) {
              // Rounding can carry the cosine of parallel unit vectors just past 1.
              for (int64_t r = 0; r < rows; ++r) {
                float* row = c + r * ldc;
                for (int64_t j = 0; j < bRows; ++j) row[j] = std::min(1.0f, std::max(-1.0f, row[j]));
              }
            });
}

}  // namespace saekit
