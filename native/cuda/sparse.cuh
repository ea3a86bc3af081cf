// The active units of a batch on the GPU, in compressed rows (CSR), and the moves between
// forms: from the encoder's per-tile pool, from and to dense rows, keeping flagged units, and
// grouping by feature (the CSC order the per-feature gradients read). Within a row, units are
// in increasing column order, as on the CPU; every step is deterministic (atomics only count).
//
// Layout: rowStart [rows + 1] (int64), and per unit e: indices[e] (its column), values[e],
// entryRow[e] (its row).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "device_buffer.cuh"

namespace saekit::cuda {

// out[i] = in[0] + ... + in[i - 1] for i < count (CUB; temp grows as needed).
void exclusiveSum(const int64_t* in, int64_t* out, int64_t count, DeviceBuffer<unsigned char>& temp,
                  cudaStream_t stream);

// rowCount[r] = units of row r in the encoder's tiles (r < rows), and rowCount[rows] = 0, so
// that the exclusive sum over rows + 1 values is rowStart.
void tileRowCounts(const int32_t* tileCount, int64_t rows, int64_t tiles, int64_t* rowCount, cudaStream_t stream);
// Copies each row's units from the pool, tile by tile, to their CSR places.
void gatherTiles(const int32_t* tileCount, const int64_t* tilePos, int64_t rows, int64_t tiles,
                 const float* poolValues, const int32_t* poolIndices, const int64_t* rowStart, int32_t* indices,
                 float* values, int32_t* entryRow, cudaStream_t stream);

// The non-zeros of dense [rows, cols]: counts (as tileRowCounts), then the gather (entryRow
// may be null).
void denseRowCounts(const float* dense, int64_t rows, int64_t cols, int64_t* rowCount, cudaStream_t stream);
void gatherDense(const float* dense, int64_t rows, int64_t cols, const int64_t* rowStart, int32_t* indices,
                 float* values, int32_t* entryRow, cudaStream_t stream);
// dense [rows, cols] (zeroed by the caller) gets each unit's value.
void scatterDense(const int64_t* rowStart, const int32_t* indices, const float* values, int64_t rows, int64_t cols,
                  float* dense, cudaStream_t stream);

// A CSR that arrives with an int32 indptr (decodeSparse): rowStart and entryRow from it.
void widenIndptr(const int32_t* indptr, int64_t rows, int64_t* rowStart, int32_t* entryRow, cudaStream_t stream);

// Keeping the units whose flag is set: counts (as tileRowCounts), then the gather in order.
void flaggedRowCounts(const int64_t* rowStart, int64_t rows, const uint8_t* flags, int64_t* rowCount,
                      cudaStream_t stream);
void gatherFlagged(const int64_t* rowStart, int64_t rows, const int32_t* indices, const float* values,
                   const uint8_t* flags, const int64_t* newRowStart, int32_t* newIndices, float* newValues,
                   int32_t* newEntryRow, cudaStream_t stream);

// flags[e] = columnFlags[indices[e]] for e < nnz: the units of the flagged columns.
void flagByColumn(const int32_t* indices, int64_t nnz, const uint8_t* columnFlags, uint8_t* flags,
                  cudaStream_t stream);

// Grouping by column, in two calls (SAEKIT_CUDA_PROFILE times each): a stable counting sort
// over chunks of consecutive units, `table` holding a count per (column, chunk). First
// columnStart [cols + 1], where each column's units start in columnEntry;
struct ColumnTable {
  int64_t chunkUnits = 0;  // units per chunk
  int64_t chunks = 0;
};
ColumnTable columnStarts(const int32_t* indices, int64_t nnz, int64_t cols, int64_t* columnStart,
                         DeviceBuffer<int32_t>& table, cudaStream_t stream);
// then columnEntry [nnz]: the CSR position of each unit, by column, positions increasing within
// a column (so rows increase, except that AuxK's units, appended after the others, come last).
void sortByColumn(const int32_t* indices, int64_t nnz, const int64_t* columnStart, const ColumnTable& shape,
                  DeviceBuffer<int32_t>& table, int32_t* columnEntry, cudaStream_t stream);

// out[i] = i for i < n.
void iota(int32_t* out, int64_t n, cudaStream_t stream);

}  // namespace saekit::cuda
