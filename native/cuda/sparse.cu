#include "sparse.cuh"

#include <algorithm>

#include <cub/block/block_scan.cuh>
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

// Grouping by column is a stable counting sort in chunks of consecutive units: the column
// table's entry [c * chunks + k] counts column c's units in chunk k, then says where they start
// among column c's units.
__global__ void countColumnChunksKernel(const int32_t* __restrict__ indices, int64_t nnz, int64_t chunkUnits,
                                        int64_t chunks, int32_t* __restrict__ table) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e < nnz) atomicAdd(table + static_cast<int64_t>(indices[e]) * chunks + e / chunkUnits, 1);
}

// One warp per column: its chunks' counts become their exclusive sum in chunk order (where they
// start among the column's units), and the column's total goes to columnStart[c].
__global__ void chunkStartsKernel(int32_t* __restrict__ table, int64_t cols, int64_t chunks,
                                  int64_t* __restrict__ columnStart) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (c >= cols) return;  // whole warps leave together
  int32_t* counts = table + c * chunks;
  int32_t carry = 0;
  for (int64_t k0 = 0; k0 < chunks; k0 += 32) {
    const int64_t k = k0 + lane;
    const int32_t count = k < chunks ? counts[k] : 0;
    int32_t inclusive = count;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const int32_t below = __shfl_sync(0xffffffffu, inclusive, lane >= offset ? lane - offset : lane);
      if (lane >= offset) inclusive += below;
    }
    if (k < chunks) counts[k] = carry + inclusive - count;
    carry += __shfl_sync(0xffffffffu, inclusive, 31);
  }
  if (lane == 0) columnStart[c] = carry;
}

// One block, in place: columnStart [cols] holds each column's total, and becomes their
// exclusive sum, with the sum of all in columnStart[cols]. Each thread takes kScanItems
// consecutive columns a pass.
constexpr int kScanItems = 8;
using StartScan = cub::BlockScan<int64_t, kRowThreads>;

__global__ void __launch_bounds__(kRowThreads) columnStartsKernel(int64_t cols, int64_t* __restrict__ columnStart) {
  __shared__ typename StartScan::TempStorage scan;
  int64_t carry = 0;
  for (int64_t c0 = 0; c0 < cols; c0 += int64_t{kRowThreads} * kScanItems) {
    const int64_t first = c0 + static_cast<int64_t>(threadIdx.x) * kScanItems;
    int64_t totals[kScanItems];
    int64_t sum = 0;
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) {
      totals[i] = first + i < cols ? columnStart[first + i] : 0;
      sum += totals[i];
    }
    int64_t before, passTotal;
    StartScan(scan).ExclusiveSum(sum, before, passTotal);
    int64_t start = carry + before;
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) {
      if (first + i < cols) columnStart[first + i] = start;
      start += totals[i];
    }
    carry += passTotal;
    __syncthreads();  // before `scan` is reused
  }
  if (threadIdx.x == 0) columnStart[cols] = carry;
}

// One block per chunk, its units in passes of kRowThreads. A unit goes where its column's
// units of this chunk start, after those of the same column earlier in the chunk; the last of
// a column in a pass moves that start on past the pass's units.
__global__ void __launch_bounds__(kRowThreads) placeByColumnKernel(const int32_t* __restrict__ indices,
                                                                  int64_t nnz, int64_t chunkUnits, int64_t chunks,
                                                                  const int64_t* __restrict__ columnStart,
                                                                  int32_t* __restrict__ table,
                                                                  int32_t* __restrict__ columnEntry) {
  __shared__ int32_t passColumn[kRowThreads];
  const int64_t chunk = blockIdx.x;
  const int64_t end = min(nnz, (chunk + 1) * chunkUnits);
  const int t = threadIdx.x;
  for (int64_t e0 = chunk * chunkUnits; e0 < end; e0 += kRowThreads) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kRowThreads), end - e0));
    const int32_t column = t < n ? indices[e0 + t] : -1;
    passColumn[t] = column;
    __syncthreads();
    int before = 0, after = 0;
    for (int j = 0; j < n; ++j) {
      const bool same = passColumn[j] == column;
      before += same && j < t;
      after += same && j > t;
    }
    int32_t* start = t < n ? table + static_cast<int64_t>(column) * chunks + chunk : nullptr;
    if (t < n) columnEntry[columnStart[column] + *start + before] = static_cast<int32_t>(e0 + t);
    __syncthreads();  // every unit of the pass has read its column's start
    if (t < n && after == 0) *start += before + 1;
    __syncthreads();  // the starts are moved on, and passColumn may be rewritten
  }
}

__global__ void iotaKernel(int32_t* __restrict__ out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = static_cast<int32_t>(i);
}

unsigned blocksFor(int64_t items, int threads) { return static_cast<unsigned>(ceilDiv(items, threads)); }

}  // namespace

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

ColumnTable columnStarts(const int32_t* indices, int64_t nnz, int64_t cols, int64_t* columnStart,
                         DeviceBuffer<int32_t>& table, cudaStream_t stream) {
  // Chunks of kChunkUnits units (so that a block places many), wider where many columns would
  // make the table much larger than kColumnTableInts entries. Every unit's place fits in int32.
  constexpr int64_t kChunkUnits = 2048;
  constexpr int64_t kColumnTableInts = int64_t{4} << 20;
  ColumnTable shape;
  shape.chunkUnits = std::max(kChunkUnits, ceilDiv(nnz * cols, kColumnTableInts));
  shape.chunks = std::max<int64_t>(1, ceilDiv(nnz, shape.chunkUnits));
  if (cols == 0) return shape;
  const int64_t entries = cols * shape.chunks;
  table.resize(static_cast<size_t>(entries));
  SAEKIT_CUDA_CHECK(cudaMemsetAsync(table.data(), 0, static_cast<size_t>(entries) * sizeof(int32_t), stream));
  if (nnz > 0) {
    countColumnChunksKernel<<<blocksFor(nnz, 256), 256, 0, stream>>>(indices, nnz, shape.chunkUnits, shape.chunks,
                                                                    table.data());
    SAEKIT_CUDA_LAUNCHED();
  }
  chunkStartsKernel<<<blocksFor(cols, kWarpsPerBlock), kWarpsPerBlock * 32, 0, stream>>>(table.data(), cols,
                                                                                        shape.chunks, columnStart);
  SAEKIT_CUDA_LAUNCHED();
  columnStartsKernel<<<1, kRowThreads, 0, stream>>>(cols, columnStart);
  SAEKIT_CUDA_LAUNCHED();
  return shape;
}

void sortByColumn(const int32_t* indices, int64_t nnz, const int64_t* columnStart, const ColumnTable& shape,
                  DeviceBuffer<int32_t>& table, int32_t* columnEntry, cudaStream_t stream) {
  if (nnz == 0) return;
  placeByColumnKernel<<<static_cast<unsigned>(shape.chunks), kRowThreads, 0, stream>>>(
      indices, nnz, shape.chunkUnits, shape.chunks, columnStart, table.data(), columnEntry);
  SAEKIT_CUDA_LAUNCHED();
}

}  // namespace saekit::cuda
