#include "sparse.cuh"

#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "common.cuh"
#include "reduce.cuh"

namespace saekit::cuda {
namespace {

constexpr int kRowThreads = 256;      // threads of the one-block-per-row kernels
constexpr int kWarpsPerBlock = 8;     // rows per block of the one-warp-per-row kernels
using RowScan = cub::BlockScan<int, kRowThreads>;

__global__ void tileRowCountsKernel(const int32_t* __restrict__ tileCount, int64_t rows, int64_t tiles,
                                    int64_t* __restrict__ rowCount) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r > rows) return;  // whole warps leave together
  int64_t sum = 0;
  if (r < rows) {
    for (int64_t t = lane; t < tiles; t += 32) sum += tileCount[r * tiles + t];
  }
  sum = warpSum(sum);
  if (lane == 0) rowCount[r] = sum;
}

// One block per row: the tiles' counts are scanned in tile order (chunks of kRowThreads, with
// a running carry), and each thread copies its tile's units.
__global__ void __launch_bounds__(kRowThreads) gatherTilesKernel(
    const int32_t* __restrict__ tileCount, const int64_t* __restrict__ tilePos, int64_t tiles,
    const float* __restrict__ poolValues, const int32_t* __restrict__ poolIndices,
    const int64_t* __restrict__ rowStart, int32_t* __restrict__ indices, float* __restrict__ values,
    int32_t* __restrict__ entryRow) {
  __shared__ typename RowScan::TempStorage scan;
  const int64_t r = blockIdx.x;
  const int64_t first = rowStart[r];
  int64_t carry = 0;
  for (int64_t t0 = 0; t0 < tiles; t0 += kRowThreads) {
    const int64_t t = t0 + threadIdx.x;
    const int count = t < tiles ? tileCount[r * tiles + t] : 0;
    int offset, total;
    RowScan(scan).ExclusiveSum(count, offset, total);
    if (count > 0) {
      const int64_t from = tilePos[r * tiles + t];
      const int64_t to = first + carry + offset;
      for (int e = 0; e < count; ++e) {
        indices[to + e] = poolIndices[from + e];
        values[to + e] = poolValues[from + e];
        entryRow[to + e] = static_cast<int32_t>(r);
      }
    }
    carry += total;
    __syncthreads();  // before `scan` is reused
  }
}

// One block per row (and one more that writes rowCount[rows] = 0).
__global__ void __launch_bounds__(kRowThreads) denseRowCountsKernel(const float* __restrict__ dense, int64_t rows,
                                                                    int64_t cols, int64_t* __restrict__ rowCount) {
  __shared__ int64_t scratch[32];
  const int64_t r = blockIdx.x;
  int64_t count = 0;
  if (r < rows) {
    for (int64_t c = threadIdx.x; c < cols; c += kRowThreads) count += dense[r * cols + c] != 0.0f;
  }
  count = blockSum(count, scratch);
  if (threadIdx.x == 0) rowCount[r] = count;
}

__global__ void __launch_bounds__(kRowThreads) gatherDenseKernel(const float* __restrict__ dense, int64_t cols,
                                                                 const int64_t* __restrict__ rowStart,
                                                                 int32_t* __restrict__ indices,
                                                                 float* __restrict__ values,
                                                                 int32_t* __restrict__ entryRow) {
  __shared__ typename RowScan::TempStorage scan;
  const int64_t r = blockIdx.x;
  int64_t next = rowStart[r];
  for (int64_t c0 = 0; c0 < cols; c0 += kRowThreads) {
    const int64_t c = c0 + threadIdx.x;
    const float value = c < cols ? dense[r * cols + c] : 0.0f;
    const int keep = value != 0.0f;
    int offset, total;
    RowScan(scan).ExclusiveSum(keep, offset, total);
    if (keep) {
      indices[next + offset] = static_cast<int32_t>(c);
      values[next + offset] = value;
      if (entryRow != nullptr) entryRow[next + offset] = static_cast<int32_t>(r);
    }
    next += total;
    __syncthreads();
  }
}

__global__ void __launch_bounds__(kRowThreads) scatterDenseKernel(const int64_t* __restrict__ rowStart,
                                                                  const int32_t* __restrict__ indices,
                                                                  const float* __restrict__ values, int64_t cols,
                                                                  float* __restrict__ dense) {
  const int64_t r = blockIdx.x;
  for (int64_t e = rowStart[r] + threadIdx.x; e < rowStart[r + 1]; e += kRowThreads) {
    dense[r * cols + indices[e]] = values[e];
  }
}

__global__ void widenIndptrKernel(const int32_t* __restrict__ indptr, int64_t rows, int64_t* __restrict__ rowStart) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r <= rows) rowStart[r] = indptr[r];
}

__global__ void __launch_bounds__(kRowThreads) fillEntryRowsKernel(const int64_t* __restrict__ rowStart,
                                                                   int32_t* __restrict__ entryRow) {
  const int64_t r = blockIdx.x;
  for (int64_t e = rowStart[r] + threadIdx.x; e < rowStart[r + 1]; e += kRowThreads) {
    entryRow[e] = static_cast<int32_t>(r);
  }
}

__global__ void flagByColumnKernel(const int32_t* __restrict__ indices, int64_t nnz,
                                   const uint8_t* __restrict__ columnFlags, uint8_t* __restrict__ flags) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e < nnz) flags[e] = columnFlags[indices[e]];
}

__global__ void __launch_bounds__(kRowThreads) flaggedRowCountsKernel(const int64_t* __restrict__ rowStart,
                                                                      int64_t rows, const uint8_t* __restrict__ flags,
                                                                      int64_t* __restrict__ rowCount) {
  __shared__ int64_t scratch[32];
  const int64_t r = blockIdx.x;
  int64_t count = 0;
  if (r < rows) {
    for (int64_t e = rowStart[r] + threadIdx.x; e < rowStart[r + 1]; e += kRowThreads) count += flags[e];
  }
  count = blockSum(count, scratch);
  if (threadIdx.x == 0) rowCount[r] = count;
}

__global__ void __launch_bounds__(kRowThreads) gatherFlaggedKernel(
    const int64_t* __restrict__ rowStart, const int32_t* __restrict__ indices, const float* __restrict__ values,
    const uint8_t* __restrict__ flags, const int64_t* __restrict__ newRowStart, int32_t* __restrict__ newIndices,
    float* __restrict__ newValues, int32_t* __restrict__ newEntryRow) {
  __shared__ typename RowScan::TempStorage scan;
  const int64_t r = blockIdx.x;
  const int64_t end = rowStart[r + 1];
  int64_t next = newRowStart[r];
  for (int64_t e0 = rowStart[r]; e0 < end; e0 += kRowThreads) {
    const int64_t e = e0 + threadIdx.x;
    const int keep = e < end ? flags[e] : 0;
    int offset, total;
    RowScan(scan).ExclusiveSum(keep, offset, total);
    if (keep) {
      newIndices[next + offset] = indices[e];
      newValues[next + offset] = values[e];
      newEntryRow[next + offset] = static_cast<int32_t>(r);
    }
    next += total;
    __syncthreads();
  }
}

__global__ void countPerColumnKernel(const int32_t* __restrict__ indices, int64_t nnz, int64_t* __restrict__ counts) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e < nnz) atomicAdd(reinterpret_cast<unsigned long long*>(counts + indices[e]), 1ull);
}

__global__ void iotaKernel(int32_t* __restrict__ out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = static_cast<int32_t>(i);
}

unsigned blocksFor(int64_t items, int threads) { return static_cast<unsigned>(ceilDiv(items, threads)); }

}  // namespace

int bitsFor(int64_t count) {
  int bits = 1;
  while (bits < 63 && (int64_t{1} << bits) < count) ++bits;
  return bits;
}

void exclusiveSum(const int64_t* in, int64_t* out, int64_t count, DeviceBuffer<unsigned char>& temp,
                  cudaStream_t stream) {
  size_t bytes = 0;
  SAEKIT_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, bytes, in, out, count, stream));
  temp.resize(bytes);
  SAEKIT_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp.data(), bytes, in, out, count, stream));
}

void tileRowCounts(const int32_t* tileCount, int64_t rows, int64_t tiles, int64_t* rowCount, cudaStream_t stream) {
  tileRowCountsKernel<<<blocksFor(rows + 1, kWarpsPerBlock), kWarpsPerBlock * 32, 0, stream>>>(tileCount, rows, tiles,
                                                                                             rowCount);
  SAEKIT_CUDA_LAUNCHED();
}

void gatherTiles(const int32_t* tileCount, const int64_t* tilePos, int64_t rows, int64_t tiles,
                 const float* poolValues, const int32_t* poolIndices, const int64_t* rowStart, int32_t* indices,
                 float* values, int32_t* entryRow, cudaStream_t stream) {
  if (rows == 0) return;
  gatherTilesKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(tileCount, tilePos, tiles, poolValues,
                                                                            poolIndices, rowStart, indices, values,
                                                                            entryRow);
  SAEKIT_CUDA_LAUNCHED();
}

void denseRowCounts(const float* dense, int64_t rows, int64_t cols, int64_t* rowCount, cudaStream_t stream) {
  denseRowCountsKernel<<<static_cast<unsigned>(rows + 1), kRowThreads, 0, stream>>>(dense, rows, cols, rowCount);
  SAEKIT_CUDA_LAUNCHED();
}

void gatherDense(const float* dense, int64_t rows, int64_t cols, const int64_t* rowStart, int32_t* indices,
                 float* values, int32_t* entryRow, cudaStream_t stream) {
  if (rows == 0) return;
  gatherDenseKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(dense, cols, rowStart, indices, values,
                                                                            entryRow);
  SAEKIT_CUDA_LAUNCHED();
}

void scatterDense(const int64_t* rowStart, const int32_t* indices, const float* values, int64_t rows, int64_t cols,
                  float* dense, cudaStream_t stream) {
  if (rows == 0) return;
  scatterDenseKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(rowStart, indices, values, cols, dense);
  SAEKIT_CUDA_LAUNCHED();
}

void widenIndptr(const int32_t* indptr, int64_t rows, int64_t* rowStart, int32_t* entryRow, cudaStream_t stream) {
  widenIndptrKernel<<<blocksFor(rows + 1, 256), 256, 0, stream>>>(indptr, rows, rowStart);
  SAEKIT_CUDA_LAUNCHED();
  if (rows == 0) return;
  fillEntryRowsKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(rowStart, entryRow);
  SAEKIT_CUDA_LAUNCHED();
}

void flagByColumn(const int32_t* indices, int64_t nnz, const uint8_t* columnFlags, uint8_t* flags,
                  cudaStream_t stream) {
  if (nnz == 0) return;
  flagByColumnKernel<<<blocksFor(nnz, kRowThreads), kRowThreads, 0, stream>>>(indices, nnz, columnFlags, flags);
  SAEKIT_CUDA_LAUNCHED();
}

void flaggedRowCounts(const int64_t* rowStart, int64_t rows, const uint8_t* flags, int64_t* rowCount,
                      cudaStream_t stream) {
  flaggedRowCountsKernel<<<static_cast<unsigned>(rows + 1), kRowThreads, 0, stream>>>(rowStart, rows, flags, rowCount);
  SAEKIT_CUDA_LAUNCHED();
}

void gatherFlagged(const int64_t* rowStart, int64_t rows, const int32_t* indices, const float* values,
                   const uint8_t* flags, const int64_t* newRowStart, int32_t* newIndices, float* newValues,
                   int32_t* newEntryRow, cudaStream_t stream) {
  if (rows == 0) return;
  gatherFlaggedKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
      rowStart, indices, values, flags, newRowStart, newIndices, newValues, newEntryRow);
  SAEKIT_CUDA_LAUNCHED();
}

void iota(int32_t* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  iotaKernel<<<blocksFor(n, 256), 256, 0, stream>>>(out, n);
  SAEKIT_CUDA_LAUNCHED();
}

void columnStarts(const int32_t* indices, int64_t nnz, int64_t cols, int64_t* columnStart,
                  DeviceBuffer<int64_t>& counts, DeviceBuffer<unsigned char>& temp, cudaStream_t stream) {
  counts.resize(static_cast<size_t>(cols + 1));
  SAEKIT_CUDA_CHECK(cudaMemsetAsync(counts.data(), 0, static_cast<size_t>(cols + 1) * sizeof(int64_t), stream));
  if (nnz > 0) {
    countPerColumnKernel<<<blocksFor(nnz, 256), 256, 0, stream>>>(indices, nnz, counts.data());
    SAEKIT_CUDA_LAUNCHED();
  }
  exclusiveSum(counts.data(), columnStart, cols + 1, temp, stream);
}

void sortByColumn(const int32_t* indices, int64_t nnz, int64_t cols, int32_t* columnEntry, DeviceBuffer<int32_t>& scratch,
                  DeviceBuffer<unsigned char>& temp, cudaStream_t stream) {
  if (nnz == 0) return;
  // A stable radix sort of the units' columns carries each unit's CSR position along; CSR
  // order is row order, so rows stay increasing within a column.
  scratch.resize(static_cast<size_t>(2 * nnz));
  int32_t* positions = scratch.data();
  int32_t* sortedColumns = scratch.data() + nnz;
  iota(positions, nnz, stream);
  const int bits = bitsFor(cols);
  size_t bytes = 0;
  SAEKIT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, indices, sortedColumns, positions, columnEntry,
                                                    nnz, 0, bits, stream));
  temp.resize(bytes);
  SAEKIT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data(), bytes, indices, sortedColumns, positions, columnEntry,
                                                    nnz, 0, bits, stream));
}

}  // namespace saekit::cuda
