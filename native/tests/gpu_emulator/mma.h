// The one function of <mma.h> (nvcuda::wmma) that native/cuda uses, for the GPU emulator:
// ptx.cuh rounds to TF32 with it (cvt.rna.tf32.f32: to nearest, ties away from zero).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace nvcuda::wmma {

inline float __float_to_tf32(float v) {
  if (!std::isfinite(v)) return v;
  return __uint_as_float((__float_as_uint(v) + 0x1000u) & ~0x1fffu);
}

}  // namespace nvcuda::wmma
