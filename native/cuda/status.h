// Whether the CUDA backend can run here, for backends() and for creating models. A plain
// C++ header (no CUDA types) so that the binding, compiled by the host compiler, can use it.
#pragma once

#include <string>

namespace saekit::cuda {

struct CudaStatus {
  bool available = false;
  // Why not, as a code the TypeScript layer turns into advice: "no-driver", "driver-too-old",
  // "no-device", "unsupported-gpu" or "error"; empty when available.
  std::string cause;
  std::string reason;  // a sentence for the user; empty when available
  std::string gpu;     // "NVIDIA H100 80GB HBM3 (compute capability 9.0)" when available
};

// Probes the runtime once per process (the answer cannot change while it runs) and caches it.
const CudaStatus& cudaStatus();

// Throws BACKEND_UNAVAILABLE with the reason unless the backend can run here.
void requireCuda(const char* what);

// The architectures this build compiled for, as CMake lists them ("80-real;86-real;89-real;90").
const char* builtArchitectures();

}  // namespace saekit::cuda
