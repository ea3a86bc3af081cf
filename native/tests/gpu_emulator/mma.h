// The WMMA API (nvcuda::wmma) for the GPU emulator, for gemm_tf32.cu's shapes: fragments are
// opaque on a GPU, so here lane 0 of a warp holds the whole matrix and does the work (loads,
// products summed in double, stores); the other lanes' fragments go unused. TF32 values are
// what the caller rounded with __float_to_tf32 (round to nearest, ties away from zero).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int kRows = std::is_same<Use, matrix_b>::value ? K : M;
  static constexpr int kCols = std::is_same<Use, matrix_a>::value ? K : N;
  float x[kRows * kCols];  // row-major, in lane 0
};

inline float __float_to_tf32(float v) {
  if (!std::isfinite(v)) return v;
  return __uint_as_float((__float_as_uint(v) + 0x1000u) & ~0x1fffu);
}

template <class Use, int M, int N, int K, class T, class Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, float value) {
  for (float& v : f.x) v = value;
}

template <class Use, int M, int N, int K, class T, class Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const float* p, unsigned ld) {
  using F = fragment<Use, M, N, K, T, Layout>;
  if (saekit::emulator::lane() != 0) return;
  for (int r = 0; r < F::kRows; ++r)
    for (int c = 0; c < F::kCols; ++c) {
      f.x[r * F::kCols + c] = std::is_same<Layout, col_major>::value ? p[c * ld + r] : p[r * ld + c];
    }
}

template <int M, int N, int K, class T, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LA>& a,
              const fragment<matrix_b, M, N, K, T, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
  if (saekit::emulator::lane() != 0) return;
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double sum = 0;
      for (int k = 0; k < K; ++k) sum += static_cast<double>(a.x[i * K + k]) * b.x[k * N + j];
      out[i * N + j] = static_cast<float>(static_cast<double>(c.x[i * N + j]) + sum);
    }
  for (int i = 0; i < M * N; ++i) d.x[i] = out[i];
}

template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ld, layout_t layout) {
  if (saekit::emulator::lane() != 0) return;
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) {
      (layout == mem_row_major ? p[r * ld + c] : p[c * ld + r]) = f.x[r * N + c];
    }
}

}  // namespace nvcuda::wmma
