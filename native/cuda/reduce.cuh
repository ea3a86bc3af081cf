// Deterministic reductions inside a block: a fixed shuffle tree per warp, then the warps'
// results in warp order. The same inputs give the same bits on every run.
#pragma once

#include <cuda_runtime.h>

namespace saekit::cuda {

template <class T>
__device__ __forceinline__ T warpSum(T value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
  return value;  // in lane 0
}

// Sum and max over the warp by a butterfly, returned to every lane: each step adds (or
// compares) the same two values in both lanes of a pair, so every lane ends with the same bits.
template <class T>
__device__ __forceinline__ T warpAllSum(T value) {
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1) value += __shfl_xor_sync(0xffffffffu, value, mask);
  return value;
}

__device__ __forceinline__ double warpAllMax(double value) {
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1) value = fmax(value, __shfl_xor_sync(0xffffffffu, value, mask));
  return value;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
// `scratch` holds 32 values; the call contains barriers, so every thread must make it.
template <class T>
__device__ T blockSum(T value, T* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  value = warpSum(value);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  T total = T(0);
  for (int w = 0; w < warps; ++w) total += scratch[w];
  return total;
}

}  // namespace saekit::cuda
