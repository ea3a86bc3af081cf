#include "activation.cuh"

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include <cmath>

#include "common.cuh"
#include "reduce.cuh"
#include "sparse.cuh"

namespace saekit::cuda {
namespace {

constexpr int kThreads = 256;

// Row r's first min(k, count) sorted positions are its k largest.
__global__ void __launch_bounds__(kThreads) flagRowPrefixKernel(const int64_t* __restrict__ rowStart, int64_t k,
                                                                const int32_t* __restrict__ sortedPositions,
                                                                uint8_t* __restrict__ flags) {
  const int64_t r = blockIdx.x;
  const int64_t start = rowStart[r];
  const int64_t take = min(k, rowStart[r + 1] - start);
  for (int64_t p = threadIdx.x; p < take; p += kThreads) flags[sortedPositions[start + p]] = 1;
}

__global__ void flagPrefixKernel(const int32_t* __restrict__ sortedPositions, int64_t keep,
                                 uint8_t* __restrict__ flags) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p < keep) flags[sortedPositions[p]] = 1;
}

// One warp per row: the minimum of its values (NaN for an empty row).
__global__ void rowMinimumKernel(const int64_t* __restrict__ rowStart, int64_t rows, const float* __restrict__ values,
                                 double* __restrict__ rowMinimum) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * (kThreads / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  float smallest = INFINITY;
  for (int64_t e = rowStart[r] + lane; e < rowStart[r + 1]; e += 32) smallest = fminf(smallest, values[e]);
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) smallest = fminf(smallest, __shfl_down_sync(0xffffffffu, smallest, offset));
  if (lane == 0) rowMinimum[r] = rowStart[r + 1] > rowStart[r] ? static_cast<double>(smallest) : NAN;
}

__global__ void __launch_bounds__(kThreads) sumNonEmptyKernel(const double* __restrict__ rowMinimum, int64_t rows,
                                                              double* __restrict__ sums) {
  __shared__ double scratch[32];
  double sum = 0.0, count = 0.0;
  for (int64_t r = threadIdx.x; r < rows; r += kThreads) {
    const double v = rowMinimum[r];
    if (!isnan(v)) {
      sum += v;
      count += 1.0;
    }
  }
  sum = blockSum(sum, scratch);
  count = blockSum(count, scratch);
  if (threadIdx.x == 0) {
    sums[0] = sum;
    sums[1] = count;
  }
}

}  // namespace

void flagTopKPerRow(const int64_t* rowStart, int64_t rows, const float* values, int64_t nnz, int64_t k,
                    uint8_t* flags, SelectScratch& scratch, cudaStream_t stream) {
  SAEKIT_CUDA_CHECK(cudaMemsetAsync(flags, 0, static_cast<size_t>(nnz), stream));
  if (nnz == 0 || rows == 0) return;
  scratch.sortedValues.resize(static_cast<size_t>(nnz));
  scratch.positions.resize(static_cast<size_t>(2 * nnz));
  int32_t* positions = scratch.positions.data();
  int32_t* sorted = positions + nnz;
  iota(positions, nnz, stream);
  // A stable sort, so that equal values keep column order and the lower column wins the tie.
  size_t bytes = 0;
  SAEKIT_CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairsDescending(
      nullptr, bytes, values, scratch.sortedValues.data(), positions, sorted, nnz, rows, rowStart, rowStart + 1,
      stream));
  scratch.temp.resize(bytes);
  SAEKIT_CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairsDescending(
      scratch.temp.data(), bytes, values, scratch.sortedValues.data(), positions, sorted, nnz, rows, rowStart,
      rowStart + 1, stream));
  flagRowPrefixKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(rowStart, k, sorted, flags);
  SAEKIT_CUDA_LAUNCHED();
}

void flagLargest(const float* values, int64_t nnz, int64_t keep, uint8_t* flags, SelectScratch& scratch,
                 cudaStream_t stream) {
  SAEKIT_CUDA_CHECK(cudaMemsetAsync(flags, 0, static_cast<size_t>(nnz), stream));
  if (nnz == 0 || keep <= 0) return;
  scratch.sortedValues.resize(static_cast<size_t>(nnz));
  scratch.positions.resize(static_cast<size_t>(2 * nnz));
  int32_t* positions = scratch.positions.data();
  int32_t* sorted = positions + nnz;
  iota(positions, nnz, stream);
  // Radix sort is stable: equal values keep CSR order, the earlier unit wins the tie.
  size_t bytes = 0;
  SAEKIT_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(nullptr, bytes, values, scratch.sortedValues.data(),
                                                              positions, sorted, nnz, 0, 32, stream));
  scratch.temp.resize(bytes);
  SAEKIT_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(scratch.temp.data(), bytes, values,
                                                              scratch.sortedValues.data(), positions, sorted, nnz, 0,
                                                              32, stream));
  const int64_t take = keep < nnz ? keep : nnz;
  flagPrefixKernel<<<static_cast<unsigned>(ceilDiv(take, kThreads)), kThreads, 0, stream>>>(sorted, take, flags);
  SAEKIT_CUDA_LAUNCHED();
}

void rowMinimumSum(const int64_t* rowStart, int64_t rows, const float* values, DeviceBuffer<double>& rowMinimum,
                   double* sums, cudaStream_t stream) {
  rowMinimum.resize(static_cast<size_t>(rows > 0 ? rows : 1));
  if (rows > 0) {
    rowMinimumKernel<<<static_cast<unsigned>(ceilDiv(rows, kThreads / 32)), kThreads, 0, stream>>>(
        rowStart, rows, values, rowMinimum.data());
    SAEKIT_CUDA_LAUNCHED();
  }
  sumNonEmptyKernel<<<1, kThreads, 0, stream>>>(rowMinimum.data(), rows, sums);
  SAEKIT_CUDA_LAUNCHED();
}

}  // namespace saekit::cuda
