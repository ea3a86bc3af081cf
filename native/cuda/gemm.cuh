// The encoder product of the SAE step with its epilogue fused: for every row of a and every
// column (feature) j,
//
//     z = sum_k a[row, k] b[j, k] + bias[j]         (a [rows, k] row-major; b [n, k]: W_enc^T,
//                                                     the feature-major rows the backend keeps)
//
// and the units with z > 0 are written, compacted, to a pool: per (row, column tile of
// kGemmTileN features) the count and the pool position, the units in increasing column order.
// Nothing dense of size rows x n is written. Two kernels compute the same thing: a plain FP32
// shared-memory tiled one (closest to the CPU), and a TF32 tensor-core one (FP32 accumulation;
// inputs rounded to TF32's 10-bit mantissa), the default.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"

namespace saekit::cuda {

enum class GemmPrecision { Fp32, Tf32 };

// A block computes a kGemmTileM x kGemmTileN tile of the product; compaction is per row of it.
constexpr int kGemmTileM = 128;
constexpr int kGemmTileN = 128;

struct ActiveUnitsOut {
  const float* bias;  // [n], added to the product before the z > 0 test
  float addBack;      // added to each kept value (BatchTopK at inference tests z - threshold)
  int64_t tiles;      // column tiles per row: ceil(n / kGemmTileN)
  int32_t* tileCount;  // [rows, tiles]: active units of each row in each column tile
  int64_t* tilePos;    // [rows, tiles]: pool position of the first of them (when count > 0)
  float* poolValues;   // [poolCapacity]
  int32_t* poolIndices;  // [poolCapacity]: the column j of each unit
  int64_t poolCapacity;
  // Units found, counted even past the capacity (then the units past it are not written, and
  // the caller grows the pool and runs the product again: the count tells how much is needed).
  unsigned long long* poolUsed;
};

// rows >= 0, n >= 1, k >= 1; `a` has leading dimension lda, b has ldb (>= k). Blocks along
// the columns are at most maxColumnBlocks (the grid's limit), each looping over column tiles
// when there are more; tests pass a small number to exercise that loop.
void encoderProduct(GemmPrecision precision, const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                    int64_t n, int64_t k, const ActiveUnitsOut& out, cudaStream_t stream,
                    int64_t maxColumnBlocks = kMaxGridY);

}  // namespace saekit::cuda
