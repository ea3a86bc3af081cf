// What every CUDA file shares: checked runtime calls that throw (never abort), and small
// integer helpers. Everything in native/cuda runs on the current device of the calling
// thread; backends set it at the top of each call (DeviceScope).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "../core/ceil_div.h"

namespace saekit::cuda {

// Throws saekit::Error with code CUDA_OOM (cudaErrorMemoryAllocation) or CUDA_ERROR, naming
// the statement, the runtime's error name and text, and where it failed.
[[noreturn]] void throwCudaError(cudaError_t status, const char* statement, const char* file, int line);

// "1.5 GiB of 79.1 GiB free on cuda:0 (NVIDIA H100 80GB HBM3)", or what of it is known.
std::string describeDeviceMemory();

// Throws CUDA_OOM, saying how much `what` needed and how much the GPU has free.
[[noreturn]] void throwOutOfMemory(size_t bytes, const std::string& what);

// Throws CUDA_OOM (as above) when `bytes` (in long double: sizes of absurd shapes overflow
// size_t) exceed the current device's free memory; a model checks its lasting state up front.
void checkFreeMemory(long double bytes, const std::string& what);

#define SAEKIT_CUDA_CHECK(statement)                                                    \
  do {                                                                                  \
    const cudaError_t saekitStatus_ = (statement);                                      \
    if (saekitStatus_ != cudaSuccess) {                                                 \
      ::saekit::cuda::throwCudaError(saekitStatus_, #statement, __FILE__, __LINE__);    \
    }                                                                                   \
  } while (0)

// After each kernel launch: a bad launch configuration is reported here; faults during
// execution surface at the next synchronising call, which is checked as well.
#define SAEKIT_CUDA_LAUNCHED() SAEKIT_CUDA_CHECK(cudaGetLastError())

// Makes `device` current for the calling thread (jobs run on libuv's worker threads, whose
// current device is not the model's unless set).
class DeviceScope {
 public:
  explicit DeviceScope(int device) { SAEKIT_CUDA_CHECK(cudaSetDevice(device)); }
};

// Copies `bytes` on `stream` (pageable host memory: the runtime stages it) and waits for the
// stream, so the host array may be reused or read once this returns.
void copyAndWait(void* to, const void* from, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);

// For destructors: waits for `stream` and destroys it, ignoring errors (a destructor must not
// throw, and at process exit the runtime may already be gone). Null is nothing to do.
void releaseStream(cudaStream_t stream);

// Grid x may hold 2^31 - 1 blocks, y and z 65535: kernels that need more loop (grid-stride).
constexpr int64_t kMaxGridY = 65535;

}  // namespace saekit::cuda
