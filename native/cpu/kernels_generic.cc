// Portable kernels: 16-byte vectors, which every x86-64 CPU (SSE2) and arm64 (NEON) has.
#include "kernels.h"

namespace saekit::cpu {
namespace {
#define SAEKIT_KERNELS_NAME "generic"
#define SAEKIT_VECTOR_BYTES 16
#define SAEKIT_MR 6
#define SAEKIT_NR_VECTORS 2
#include "kernels_impl.h"
}  // namespace

const Kernels& genericKernels() { return kTable; }

}  // namespace saekit::cpu
