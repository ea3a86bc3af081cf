// Blocked single-precision matrix product on the kernel table's register tile, in the
// usual Goto/BLIS arrangement: B is packed once into panels nr columns wide, each row block
// of A is packed per k-block, and the microkernel multiplies an mr-row sliver of A by one
// panel. Row blocks are the unit of parallel work, and each finished row block is handed to
// a callback while it is still in cache: that is where the SAE step puts its bias, ReLU and
// sparse extraction (the fused epilogue).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "../core/buffer.h"
#include "../core/thread_pool.h"
#include "kernels.h"

namespace saekit::cpu {

// The right-hand operand of C = A * op(B), packed. op(B) is [k, n].
struct PackedB {
  Buffer<float> data;
  int64_t n = 0;
  int64_t k = 0;
  int64_t nr = 0;
};

enum class Layout {
  RowsAreColumnsOfC,  // B is stored [n, k]: row j of B gives column j of C (C = A B^T)
  RowsAreK,           // B is stored [k, n] (C = A B)
};

void packB(const Kernels& kernels, ThreadPool& pool, const float* b, int64_t ldb, Layout layout,
           int64_t n, int64_t k, PackedB& out);

// Writes `values` (k floats) as column j of a B packed with Layout::RowsAreColumnsOfC: a
// packed matrix follows updates to single rows of B without all of B being packed again.
void packRow(PackedB& b, int64_t j, const float* values);

struct RowBlocking {
  int64_t size;   // rows per block, a multiple of mr except for the last block
  int64_t count;
};

RowBlocking chooseRowBlocking(int64_t rows, int threads, int mr);

struct GemmScratch {
  std::vector<Buffer<float>> packedA;  // per thread
  std::vector<Buffer<float>> block;    // per thread, when C is not given
  std::vector<Buffer<float>> tile;     // per thread, for edge tiles
  size_t bytes() const;
};

// Called once per row block, on the thread that computed it, with C's rows
// [row0, row0 + rows) at c (row stride ldc).
using RowBlockDone =
    std::function<void(int thread, int64_t block, int64_t row0, int64_t rows, float* c,
                       int64_t ldc)>;

// The left operand A [m, k]: element (i, q) is data[i * ld + q], or data[q * ld + i] when
// `transposed` (A is then stored [k, m]). `shift`, a length-k vector or null, is subtracted
// from every row.
struct OperandA {
  const float* data;
  int64_t ld;
  bool transposed = false;
  const float* shift = nullptr;
};

// C = (A - shift) op(B) for the m rows of A. If c is null each row block is computed into
// per-thread scratch and is only valid inside `done`.
void gemm(const Kernels& kernels, ThreadPool& pool, GemmScratch& scratch, const OperandA& a, int64_t m,
          const PackedB& b, float* c, int64_t ldc, const RowBlocking& blocking, const RowBlockDone& done);

}  // namespace saekit::cpu
