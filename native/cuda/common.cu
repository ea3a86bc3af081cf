#include "common.cuh"

#include <limits>
#include <string>

#include "../core/error.h"
#include "../core/memory.h"

namespace saekit::cuda {

void throwCudaError(cudaError_t status, const char* statement, const char* file, int line) {
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throwError("CUDA_OOM", std::string("CUDA out of memory in ") + statement + " (" + describeDeviceMemory() +
                               "); use a smaller batch or model, or free GPU memory held by other processes");
  }
  std::string where = file;
  const size_t slash = where.find_last_of('/');
  if (slash != std::string::npos) where = where.substr(slash + 1);
  throwError("CUDA_ERROR", std::string("CUDA error ") + cudaGetErrorName(status) + " (" +
                               std::to_string(static_cast<int>(status)) + "): " + cudaGetErrorString(status) + " in " +
                               statement + " at " + where + ":" + std::to_string(line));
}

std::string describeDeviceMemory() {
  size_t freeBytes = 0, totalBytes = 0;
  int device = 0;
  cudaDeviceProp props{};
  if (cudaGetDevice(&device) != cudaSuccess || cudaMemGetInfo(&freeBytes, &totalBytes) != cudaSuccess ||
      cudaGetDeviceProperties(&props, device) != cudaSuccess) {
    cudaGetLastError();
    return "free GPU memory unknown";
  }
  return formatBytes(freeBytes) + " of " + formatBytes(totalBytes) + " free on cuda:" + std::to_string(device) + " (" +
         props.name + ")";
}

void checkFreeMemory(long double bytes, const std::string& what) {
  size_t freeBytes = 0, totalBytes = 0;
  SAEKIT_CUDA_CHECK(cudaMemGetInfo(&freeBytes, &totalBytes));
  if (bytes <= static_cast<long double>(freeBytes)) return;
  const long double largest = static_cast<long double>(std::numeric_limits<size_t>::max() / 2);
  throwOutOfMemory(bytes >= largest ? std::numeric_limits<size_t>::max() / 2 : static_cast<size_t>(bytes), what);
}

void copyAndWait(void* to, const void* from, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (bytes > 0) SAEKIT_CUDA_CHECK(cudaMemcpyAsync(to, from, bytes, kind, stream));
  SAEKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void releaseStream(cudaStream_t stream) {
  if (stream == nullptr) return;
  cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
  cudaGetLastError();
}

void throwOutOfMemory(size_t bytes, const std::string& what) {
  throwError("CUDA_OOM", "CUDA out of memory: " + what + " needs " + formatBytes(bytes) + " of GPU memory (" +
                             describeDeviceMemory() + "); use a smaller batch or model");
}

}  // namespace saekit::cuda
