#include "status.h"

#include <cuda_runtime.h>

#include <mutex>
#include <string>

#include "../core/error.h"

#ifndef SAEKIT_CUDA_ARCHS
#define SAEKIT_CUDA_ARCHS "unknown"
#endif

namespace saekit::cuda {
namespace {

// Launching nothing, this tells whether the binary holds code this GPU can run.
__global__ void probeKernel() {}

std::string versionText(int version) {
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

CudaStatus probe() {
  CudaStatus status;
  int runtimeVersion = 0;
  cudaRuntimeGetVersion(&runtimeVersion);
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  cudaGetLastError();
  if (error == cudaErrorInsufficientDriver) {
    int driverVersion = 0;
    cudaDriverGetVersion(&driverVersion);
    cudaGetLastError();
    if (driverVersion == 0) {
      status.cause = "no-driver";
      status.reason = "no NVIDIA driver was found (cudaGetDeviceCount: cudaErrorInsufficientDriver)";
    } else {
      status.cause = "driver-too-old";
      status.reason = "the NVIDIA driver supports CUDA " + versionText(driverVersion) +
                      " but saekit was built with the CUDA " + versionText(runtimeVersion) + " runtime";
    }
    return status;
  }
  if (error == cudaErrorNoDevice || (error == cudaSuccess && count == 0)) {
    status.cause = "no-device";
    status.reason = "no CUDA-capable GPU was found (cudaGetDeviceCount: " +
                    std::string(error == cudaSuccess ? "0 devices" : "cudaErrorNoDevice") + ")";
    return status;
  }
  if (error != cudaSuccess) {
    status.cause = "error";
    status.reason = std::string("the CUDA runtime failed to start: cudaGetDeviceCount returned ") +
                    cudaGetErrorName(error) + " (" + std::to_string(static_cast<int>(error)) +
                    "): " + cudaGetErrorString(error);
    return status;
  }
  cudaDeviceProp props{};
  cudaError_t propsError = cudaGetDeviceProperties(&props, 0);
  cudaFuncAttributes attributes{};
  const cudaError_t imageError = propsError == cudaSuccess ? cudaFuncGetAttributes(&attributes, probeKernel) : propsError;
  cudaGetLastError();
  const std::string capability = std::to_string(props.major) + "." + std::to_string(props.minor);
  if (imageError == cudaErrorNoKernelImageForDevice || imageError == cudaErrorInvalidDeviceFunction) {
    status.cause = "unsupported-gpu";
    status.reason = std::string("the GPU ") + props.name + " (compute capability " + capability +
                    ") cannot run this build, which was compiled for " + SAEKIT_CUDA_ARCHS;
    return status;
  }
  if (imageError != cudaSuccess) {
    status.cause = "error";
    status.reason = std::string("the CUDA runtime failed on device 0: ") + cudaGetErrorName(imageError) + ": " +
                    cudaGetErrorString(imageError);
    return status;
  }
  status.available = true;
  status.gpu = std::string(props.name) + " (compute capability " + capability + ")";
  return status;
}

}  // namespace

const CudaStatus& cudaStatus() {
  static std::once_flag once;
  static CudaStatus status;
  std::call_once(once, [] { status = probe(); });
  return status;
}

void requireCuda(const char* what) {
  const CudaStatus& status = cudaStatus();
  if (!status.available) {
    throwError("BACKEND_UNAVAILABLE", std::string("Cannot create ") + what + " on device 'cuda': " + status.reason);
  }
}

const char* builtArchitectures() { return SAEKIT_CUDA_ARCHS; }

}  // namespace saekit::cuda
