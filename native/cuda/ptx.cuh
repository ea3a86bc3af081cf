// The PTX instructions that kernels use through inline assembly, each behind a small function
// (Ampere and newer: cp.async, ldmatrix, mma.sync). native/tests/gpu_emulator.h defines the
// same functions on the host, with the same meaning, to run kernels that use only these on a
// machine without a GPU; hence the classic include guard, which the emulator defines first.
#ifndef SAEKIT_CUDA_PTX_CUH
#define SAEKIT_CUDA_PTX_CUH

#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>

namespace saekit::cuda::ptx {

// The block's dynamic shared memory (the launch's third argument), 128-byte aligned.
__device__ __forceinline__ float* dynamicShared() {
  extern __shared__ __align__(128) float dynamicSharedFloats[];
  return dynamicSharedFloats;
}

__device__ __forceinline__ uint32_t sharedAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// cp.async: copies `validBytes` (0..16, resp. 0..4) from global memory to shared memory
// `to` and fills the rest of the 16 (4) bytes with zeros; `from` must be a readable global
// address even when nothing is copied. Completes at waitCopies.
__device__ __forceinline__ void copy16(uint32_t to, const float* from, int validBytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(to), "l"(__cvta_generic_to_global(from)),
               "r"(validBytes));
}

__device__ __forceinline__ void copy4(uint32_t to, const float* from, int validBytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(to), "l"(__cvta_generic_to_global(from)),
               "r"(validBytes));
}

// Closes this thread's current group of copies.
__device__ __forceinline__ void commitCopies() { asm volatile("cp.async.commit_group;\n" ::); }

// Waits until at most `kPending` of this thread's committed groups are unfinished; the
// finished groups' data is then visible to this thread (to others after a barrier).
template <int kPending>
__device__ __forceinline__ void waitCopies() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// ldmatrix.sync.aligned.m8n8.x4.b16 used on 32-bit data: lane l names (in `address`) row
// l % 8 of matrix l / 8, 16 bytes; register q of lane l receives bytes 4 (l % 4) .. + 3 of row
// l / 4 of matrix q.
__device__ __forceinline__ void loadMatrices(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// c += a b for one 16 x 8 x 8 TF32 product of the warp (mma.sync.m16n8k8.row.col; the
// fragment layouts are in gemm_tf32_layout.h).
__device__ __forceinline__ void multiplyAccumulateTf32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// cvt.rna.tf32.f32: to nearest TF32 (10-bit mantissa), ties away from zero.
__device__ __forceinline__ float roundToTf32(float x) { return nvcuda::wmma::__float_to_tf32(x); }

}  // namespace saekit::cuda::ptx

#endif  // SAEKIT_CUDA_PTX_CUH
