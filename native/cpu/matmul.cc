#include "matmul.h"

#include "../core/thread_pool.h"
#include "gemm.h"
#include "kernels.h"

namespace saekit::cpu {

void multiply(const float* a, bool transposeA, const float* b, int64_t m, int64_t k, int64_t n, float* c,
              int threads) {
  const Kernels& set = kernels();
  ThreadPool pool(threads);
  PackedB packed;
  packB(set, pool, b, n, Layout::RowsAreK, n, k, packed);
  GemmScratch scratch;
  gemm(set, pool, scratch, OperandA{a, transposeA ? m : k, transposeA}, m, packed, c, n,
       chooseRowBlocking(m, pool.size(), set.mr), [](int, int64_t, int64_t, int64_t, float*, int64_t) {});
}

}  // namespace saekit::cpu
