// TopK and BatchTopK on the GPU, applied to the CSR of positive pre-activations the encoder's
// epilogue produced (TopK keeps the k largest of a row's positive values, which is the k
// largest values then ReLU, as on the CPU). Both flag the units to keep; sparse.cuh's
// flagged gather then compacts them, keeping increasing column order.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "device_buffer.cuh"

namespace saekit::cuda {

// Sort scratch the two selections share.
struct SelectScratch {
  DeviceBuffer<float> sortedValues{"TopK sort keys"};
  DeviceBuffer<int32_t> positions{"TopK sort positions"};  // [2 * nnz]: iota in, sorted out
  DeviceBuffer<unsigned char> temp{"CUB scratch"};
  size_t bytes() const { return sortedValues.bytes() + positions.bytes() + temp.bytes(); }
};

// flags[e] = 1 for the k largest values of each row (ties to the lower column), else 0.
void flagTopKPerRow(const int64_t* rowStart, int64_t rows, const float* values, int64_t nnz, int64_t k,
                    uint8_t* flags, SelectScratch& scratch, cudaStream_t stream);

// flags[e] = 1 for the `keep` largest values of all nnz (ties to the earlier position).
void flagLargest(const float* values, int64_t nnz, int64_t keep, uint8_t* flags, SelectScratch& scratch,
                 cudaStream_t stream);

// sums[0] = sum over non-empty rows of the row's smallest value, sums[1] = their count (as
// doubles): BatchTopK's threshold statistic. `rowMinimum` holds rows values of scratch.
void rowMinimumSum(const int64_t* rowStart, int64_t rows, const float* values, DeviceBuffer<double>& rowMinimum,
                   double* sums, cudaStream_t stream);

}  // namespace saekit::cuda
