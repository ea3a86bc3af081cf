// Whether the CUDA backend can run here, for backends() and for creating models. A plain
// C++ header (no CUDA types) so that the binding, compiled by the host compiler, can use it.
#pragma once

#include <string>
#include <vector>

namespace saekit::cuda {

struct CudaStatus {
  // The runtime started and device 0 (what device 'cuda' means) can run this build.
  bool available = false;
  // Why not, as a code the TypeScript layer turns into advice: "no-driver", "driver-too-old",
  // "no-device", "unsupported-gpu" or "error"; empty when available.
  std::string cause;
  std::string reason;  // a sentence for the user; empty when available
  std::string gpu;     // "NVIDIA H100 80GB HBM3 (compute capability 9.0)" when available
  // Every GPU the runtime sees, device 0 first, described as `gpu` is (CUDA_VISIBLE_DEVICES
  // decides which and in what order). Known without starting a context on any but device 0.
  std::vector<std::string> gpus;
};

// Probes the runtime once per process (the answer cannot change while it runs) and caches it.
const CudaStatus& cudaStatus();

// Throws BACKEND_UNAVAILABLE with the reason unless the backend can run on GPU `device` here.
void requireCuda(const char* what, int device);

// The architectures this build compiled for, as CMake lists them ("80-real;86-real;89-real;90").
const char* builtArchitectures();

}  // namespace saekit::cuda
