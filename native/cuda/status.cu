#include "status.h"

#include <cuda_runtime.h>

#include <mutex>
#include <string>
#include <vector>

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

std::string describe(const cudaDeviceProp& props) {
  return std::string(props.name) + " (compute capability " + std::to_string(props.major) + "." +
         std::to_string(props.minor) + ")";
}

// Whether the binary holds code `device` can run (this starts its context, and leaves it the
// calling thread's current device).
cudaError_t probeImage(int device) {
  cudaError_t error = cudaSetDevice(device);
  if (error == cudaSuccess) {
    cudaFuncAttributes attributes{};
    error = cudaFuncGetAttributes(&attributes, probeKernel);
  }
  cudaGetLastError();
  return error;
}

bool isMissingImage(cudaError_t error) {
  return error == cudaErrorNoKernelImageForDevice || error == cudaErrorInvalidDeviceFunction;
}

std::string unsupportedReason(const std::string& gpu) {
  return "the GPU " + gpu + " cannot run this build, which was compiled for " + SAEKIT_CUDA_ARCHS;
}

std::string failedOn(int device, cudaError_t error) {
  return "the CUDA runtime failed on device " + std::to_string(device) + ": " + cudaGetErrorName(error) + ": " +
         cudaGetErrorString(error);
}

std::string deviceName(int device) { return device == 0 ? "'cuda'" : "'cuda:" + std::to_string(device) + "'"; }

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
  for (int device = 0; device < count; ++device) {
    cudaDeviceProp props{};
    const cudaError_t propsError = cudaGetDeviceProperties(&props, device);
    cudaGetLastError();
    if (propsError != cudaSuccess) {
      status.cause = "error";
      status.reason = failedOn(device, propsError);
      return status;
    }
    status.gpus.push_back(describe(props));
  }
  // Device 0 only: probing the others would start a context (and take memory) on every GPU of
  // the machine; requireCuda probes a device when a model is created on it.
  const cudaError_t imageError = probeImage(0);
  if (isMissingImage(imageError)) {
    status.cause = "unsupported-gpu";
    status.reason = unsupportedReason(status.gpus[0]);
    return status;
  }
  if (imageError != cudaSuccess) {
    status.cause = "error";
    status.reason = failedOn(0, imageError);
    return status;
  }
  status.available = true;
  status.gpu = status.gpus[0];
  return status;
}

}  // namespace

const CudaStatus& cudaStatus() {
  static std::once_flag once;
  static CudaStatus status;
  std::call_once(once, [] { status = probe(); });
  return status;
}

void requireCuda(const char* what, int device) {
  const CudaStatus& status = cudaStatus();
  const std::string prefix = std::string("Cannot create ") + what + " on device " + deviceName(device) + ": ";
  if (!status.available) throwError("BACKEND_UNAVAILABLE", prefix + status.reason);
  const int count = static_cast<int>(status.gpus.size());
  if (device < 0 || device >= count) {
    const std::string seen = count == 1 ? "one GPU, 'cuda:0'"
                                        : std::to_string(count) + " GPUs, 'cuda:0' to 'cuda:" + std::to_string(count - 1) + "'";
    throwError("BACKEND_UNAVAILABLE", prefix + "the CUDA runtime sees " + seen +
                                          "; choose one of those, or check CUDA_VISIBLE_DEVICES (which decides which "
                                          "GPUs are seen, and numbers them from 0)");
  }
  if (device == 0) return;
  static std::mutex mutex;
  static std::vector<int> probed;  // per device: 0 not yet, 1 runs this build, -1 does not
  std::lock_guard<std::mutex> lock(mutex);
  probed.resize(static_cast<size_t>(count), 0);
  if (probed[device] == 0) {
    const cudaError_t error = probeImage(device);
    if (error != cudaSuccess && !isMissingImage(error)) throwError("BACKEND_UNAVAILABLE", prefix + failedOn(device, error));
    probed[device] = error == cudaSuccess ? 1 : -1;
  }
  if (probed[device] < 0) throwError("BACKEND_UNAVAILABLE", prefix + unsupportedReason(status.gpus[device]));
}

const char* builtArchitectures() { return SAEKIT_CUDA_ARCHS; }

}  // namespace saekit::cuda
