// AVX2 + FMA kernels (Haswell, Zen and later). Built into every x86-64 binary; only called
// when the CPU reports both features (see kernels.cc).
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

namespace saekit::cpu {
namespace {
#define SAEKIT_KERNELS_NAME "avx2"
#define SAEKIT_VECTOR_BYTES 32
#define SAEKIT_MR 6
#define SAEKIT_NR_VECTORS 2
#define SAEKIT_ANY_LANE(m) (_mm256_movemask_ps(_mm256_castsi256_ps(__m256i(m))) != 0)
#define SAEKIT_SPLAT(x) _mm256_set1_ps(x)
#define SAEKIT_ANY_LANE_D(m) (_mm256_movemask_pd(_mm256_castsi256_pd(__m256i(m))) != 0)
#include "kernels_impl.h"
}  // namespace

const Kernels& avx2Kernels() { return kTable; }

}  // namespace saekit::cpu

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

#endif
