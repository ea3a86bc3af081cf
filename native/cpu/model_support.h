// Pieces every CPU model (SAE, FISTA, RICA) needs in the same form: the kernel set it runs
// on, a parallel scan of its input for NaN and infinity, and seeded unit-norm rows.
#pragma once

#include <cstdint>
#include <string>

#include "../core/buffer.h"
#include "../core/thread_pool.h"
#include "kernels.h"

namespace saekit::cpu {

// The named kernel set (the best one for an empty name); a RangeError if this CPU cannot run it.
const Kernels& requireKernels(const std::string& name);

// Throws the RangeError of checks.h at the first NaN or infinity of x[0, count), scanning
// fixed chunks in parallel; `cols` > 0 puts the row and column in the message.
void checkFiniteParallel(ThreadPool& pool, const Kernels& kernels, const float* x, int64_t count, int64_t cols,
                         const std::string& name);

// rows [count, width]: standard normal rows, normalised. Row j has its own stream, seeded
// from (seed, j), so the draw is the same whatever the thread count.
void randomUnitRows(ThreadPool& pool, float* rows, int64_t count, int64_t width, uint64_t seed);

// Codes as CSR rows: row r's non-zeros are index/value[start[r], start[r + 1]), in increasing
// column order.
struct CodeRows {
  Buffer<int64_t> start;
  Buffer<int32_t> index;
  Buffer<float> value;

  int64_t nonzeros(int64_t rows) const { return start[rows]; }
  size_t bytes() const { return start.bytes() + index.bytes() + value.bytes(); }
};

// The non-zeros of dense [count, cols], as `rows` (whatever it held before).
void denseToRows(const float* dense, int64_t count, int64_t cols, CodeRows& rows);

}  // namespace saekit::cpu
