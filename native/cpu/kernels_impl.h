// Kernel bodies shared by every instruction set. Each kernels_<isa>.cc defines
// SAEKIT_VECTOR_BYTES, SAEKIT_MR and SAEKIT_NR_VECTORS, switches the compiler's target, and
// includes this file inside an anonymous namespace: internal linkage keeps one ISA's code
// from being merged into another's by the linker. Only compiler builtins are used here
// (no std:: templates), for the same reason.
//
// GCC/Clang vector extensions express the SIMD once; the target pragma picks SSE2, AVX2+FMA
// or NEON instructions. Multiply-adds are contracted to FMA where the target has it.

typedef float Vec __attribute__((vector_size(SAEKIT_VECTOR_BYTES)));
typedef int32_t VecMask __attribute__((vector_size(SAEKIT_VECTOR_BYTES)));

constexpr int kLanes = SAEKIT_VECTOR_BYTES / 4;
constexpr int kMr = SAEKIT_MR;
constexpr int kNrVectors = SAEKIT_NR_VECTORS;
constexpr int kNr = kNrVectors * kLanes;

inline Vec load(const float* p) {
  Vec v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline void store(float* p, Vec v) { __builtin_memcpy(p, &v, sizeof v); }

inline Vec splat(float x) { return Vec{} + x; }

inline float sumLanes(Vec v) {
  float s = 0.0f;
#pragma GCC unroll 16
  for (int l = 0; l < kLanes; ++l) s += v[l];
  return s;
}

inline bool anyLane(VecMask m) {
#ifdef SAEKIT_ANY_LANE
  return SAEKIT_ANY_LANE(m);
#else
  int32_t any = 0;
#pragma GCC unroll 16
  for (int l = 0; l < kLanes; ++l) any |= m[l];
  return any != 0;
#endif
}

void microkernel(int64_t kc, const float* __restrict a, const float* __restrict b,
                 float* __restrict c, int64_t ldc, bool accumulate) {
  Vec acc[kMr][kNrVectors];
#pragma GCC unroll 16
  for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNrVectors; ++v) acc[i][v] = Vec{};
  for (int64_t k = 0; k < kc; ++k) {
    Vec bv[kNrVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kNrVectors; ++v) bv[v] = load(b + v * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < kMr; ++i) {
      const Vec av = splat(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < kNrVectors; ++v) acc[i][v] += av * bv[v];
    }
    a += kMr;
    b += kNr;
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMr; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < kNrVectors; ++v) {
      float* p = c + i * ldc + v * kLanes;
      store(p, accumulate ? load(p) + acc[i][v] : acc[i][v]);
    }
  }
}

float dot(const float* __restrict x, const float* __restrict y, int64_t n) {
  Vec s0 = Vec{}, s1 = Vec{}, s2 = Vec{}, s3 = Vec{};
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    s0 += load(x + i) * load(y + i);
    s1 += load(x + i + kLanes) * load(y + i + kLanes);
    s2 += load(x + i + 2 * kLanes) * load(y + i + 2 * kLanes);
    s3 += load(x + i + 3 * kLanes) * load(y + i + 3 * kLanes);
  }
  for (; i + kLanes <= n; i += kLanes) s0 += load(x + i) * load(y + i);
  float s = sumLanes((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += x[i] * y[i];
  return s;
}

void axpy(float alpha, const float* __restrict x, float* __restrict y, int64_t n) {
  const Vec a = splat(alpha);
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    store(y + i, load(y + i) + a * load(x + i));
    store(y + i + kLanes, load(y + i + kLanes) + a * load(x + i + kLanes));
  }
  for (; i + kLanes <= n; i += kLanes) store(y + i, load(y + i) + a * load(x + i));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

void adam(float* __restrict param, float* __restrict m, float* __restrict v,
          const float* __restrict grad, int64_t n, const saekit::cpu::AdamStep& step) {
  const float b1 = step.beta1, b2 = step.beta2, eps = step.eps;
  const float c1 = 1.0f - b1, c2 = 1.0f - b2;
  const float stepSize = step.stepSize, sqrtBc2 = step.sqrtBiasCorrection2;
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float mi = b1 * m[i] + c1 * g;
    const float vi = b2 * v[i] + c2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] -= stepSize * mi / (__builtin_sqrtf(vi) / sqrtBc2 + eps);
  }
}

int64_t reluExtract(const float* __restrict pre, const float* __restrict bias, int64_t n,
                    int32_t* __restrict indices, float* __restrict values) {
  int64_t count = 0;
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const Vec z = load(pre + j) + load(bias + j);
    if (!anyLane(z > Vec{})) continue;
#pragma GCC unroll 16
    for (int l = 0; l < kLanes; ++l) {
      if (z[l] > 0.0f) {
        indices[count] = static_cast<int32_t>(j + l);
        values[count] = z[l];
        ++count;
      }
    }
  }
  for (; j < n; ++j) {
    const float z = pre[j] + bias[j];
    if (z > 0.0f) {
      indices[count] = static_cast<int32_t>(j);
      values[count] = z;
      ++count;
    }
  }
  return count;
}

void reluBias(float* __restrict row, const float* __restrict bias, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float z = row[j] + bias[j];
    row[j] = z > 0.0f ? z : 0.0f;
  }
}

int64_t firstNonFinite(const float* x, int64_t n) {
  // x - x is 0 for finite x and NaN for NaN or infinity, so one comparison per lane.
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Vec v = load(x + i);
    if (anyLane((v - v) != Vec{})) break;
  }
  for (; i < n; ++i) {
    if (x[i] - x[i] != 0.0f) return i;
  }
  return n;
}

const saekit::cpu::Kernels kTable = {
    SAEKIT_KERNELS_NAME, kMr, kNr, microkernel, dot, axpy, adam, reluExtract, reluBias,
    firstNonFinite,
};
