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

// Every lane set to x. An instruction set may name its broadcast (SAEKIT_SPLAT): GCC turns
// the portable `Vec{} + x` into a scalar add and a register shuffle (without -ffast-math it
// must keep the addition: 0 + x is not x for x = -0), which in the microkernel's inner loop
// competes with the FMAs for their port, where a broadcast load does not.
inline Vec splat(float x) {
#ifdef SAEKIT_SPLAT
  return Vec(SAEKIT_SPLAT(x));
#elif SAEKIT_VECTOR_BYTES == 16
  return Vec{x, x, x, x};
#else
  return Vec{} + x;
#endif
}

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
  // C's tile is usually out of cache (a row block of C outgrows L2): fetching its lines while
  // the k loop runs keeps the stores at the end from stalling on them.
#pragma GCC unroll 16
  for (int i = 0; i < kMr; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + kNr - 1, 1);
  }
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

int64_t extractAbove(const float* __restrict pre, const float* __restrict bias, int64_t n, float above,
                     int32_t* __restrict indices, float* __restrict values) {
  const Vec threshold = splat(above);
  int64_t count = 0;
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const Vec z = load(pre + j) + load(bias + j);
    if (!anyLane(z > threshold)) continue;
#pragma GCC unroll 16
    for (int l = 0; l < kLanes; ++l) {
      if (z[l] > above) {
        indices[count] = static_cast<int32_t>(j + l);
        values[count] = z[l];
        ++count;
      }
    }
  }
  for (; j < n; ++j) {
    const float z = pre[j] + bias[j];
    if (z > above) {
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

int64_t firstAbove(const float* __restrict pre, const float* __restrict bias, int64_t n, float threshold) {
  const Vec t = splat(threshold);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    if (anyLane(load(pre + j) + load(bias + j) > t)) break;
  }
  for (; j < n; ++j) {
    if (pre[j] + bias[j] > threshold) return j;
  }
  return n;
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

// out (+)= sum over g < G of coef[g] * rows[g][0, n): G rows streamed side by side into an
// output that stays in L1, so each row is read once, sequentially.
template <int G>
void addRows(const float* const* rows, const float* coef, float* __restrict out, int64_t n, bool first) {
  Vec a[G];
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) a[g] = splat(coef[g]);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    Vec acc = first ? Vec{} : load(out + j);
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) acc += a[g] * load(rows[g] + j);
    store(out + j, acc);
  }
  for (; j < n; ++j) {
    float acc = first ? 0.0f : out[j];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) acc += coef[g] * rows[g][j];
    out[j] = acc;
  }
}

void combineRows(const float* rows, int64_t ld, const int32_t* __restrict index, const float* __restrict coef,
                 int64_t count, float* __restrict out, int64_t n) {
  if (count == 0) {
    for (int64_t j = 0; j < n; ++j) out[j] = 0.0f;
    return;
  }
  const float* group[4];
  int64_t e = 0;
  for (; e + 4 <= count; e += 4) {
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) group[g] = rows + static_cast<int64_t>(index[e + g]) * ld;
    addRows<4>(group, coef + e, out, n, e == 0);
  }
  const int64_t left = count - e;
  for (int64_t g = 0; g < left; ++g) group[g] = rows + static_cast<int64_t>(index[e + g]) * ld;
  if (left == 3) addRows<3>(group, coef + e, out, n, e == 0);
  if (left == 2) addRows<2>(group, coef + e, out, n, e == 0);
  if (left == 1) addRows<1>(group, coef + e, out, n, e == 0);
}

typedef double VecD __attribute__((vector_size(SAEKIT_VECTOR_BYTES)));
typedef float VecHalf __attribute__((vector_size(SAEKIT_VECTOR_BYTES / 2)));
constexpr int kLanesD = SAEKIT_VECTOR_BYTES / 8;

inline VecD loadD(const double* p) {
  VecD v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline void storeD(double* p, VecD v) { __builtin_memcpy(p, &v, sizeof v); }

// kLanesD floats, widened to double.
inline VecD loadWiden(const float* p) {
  VecHalf h;
  __builtin_memcpy(&h, p, sizeof h);
  return __builtin_convertvector(h, VecD);
}

typedef int64_t VecMaskD __attribute__((vector_size(SAEKIT_VECTOR_BYTES)));

inline bool anyLaneD(VecMaskD m) {
#ifdef SAEKIT_ANY_LANE_D
  return SAEKIT_ANY_LANE_D(m);
#else
  int64_t any = 0;
#pragma GCC unroll 8
  for (int l = 0; l < kLanesD; ++l) any |= m[l];
  return any != 0;
#endif
}

inline VecD splatD(double x) { return VecD{} + x; }
inline VecD absD(VecD v) { return v < VecD{} ? -v : v; }
inline VecD maxD(VecD a, VecD b) { return a > b ? a : b; }

template <bool NonNegative>
inline double kktError(double x, double g, double lambda) {
  if (x > 0.0) return __builtin_fabs(g + lambda);
  if (NonNegative) return -g - lambda > 0.0 ? -g - lambda : 0.0;
  if (x < 0.0) return __builtin_fabs(g - lambda);
  const double over = __builtin_fabs(g) - lambda;
  return over > 0.0 ? over : 0.0;
}

template <bool NonNegative>
inline VecD kktError(VecD x, VecD g, VecD lambda) {
  if (NonNegative) return x > VecD{} ? absD(g + lambda) : maxD(-g - lambda, VecD{});
  // |g + lambda sign(x)| where x != 0, max(|g| - lambda, 0) where x == 0.
  const VecD signedLambda = x > VecD{} ? lambda : -lambda;
  return x != VecD{} ? absD(g + signedLambda) : maxD(absD(g) - lambda, VecD{});
}

template <bool NonNegative>
saekit::cpu::FistaStepResult fistaStepFor(const saekit::cpu::FistaStep& s, const double* __restrict x,
                                          const double* __restrict p, const float* __restrict xG,
                                          const float* __restrict pG, const float* __restrict c,
                                          double* __restrict z, int32_t* __restrict index,
                                          float* __restrict coef, int64_t m) {
  const VecD alpha = splatD(s.alpha), beta = splatD(s.beta), invL = splatD(s.invL);
  const VecD threshold = splatD(s.threshold), lambda = splatD(s.lambda);
  VecD violation = VecD{}, largest = VecD{}, restart = VecD{};
  int64_t count = 0;
  int64_t j = 0;
  for (; j + kLanesD <= m; j += kLanesD) {
    const VecD xv = loadD(x + j);
    const VecD xg = loadWiden(xG + j);
    const VecD cv = loadWiden(c + j);
    const VecD g = xg - cv;
    violation = maxD(violation, kktError<NonNegative>(xv, g, lambda));
    largest = maxD(largest, NonNegative ? -g : absD(g));
    const VecD y = alpha * xv + beta * loadD(p + j);
    const VecD gy = alpha * xg + beta * loadWiden(pG + j) - cv;
    const VecD w = y - gy * invL;
    const VecD zv = NonNegative ? (w > threshold ? w - threshold : VecD{})
                                : (w > threshold ? w - threshold : (w < -threshold ? w + threshold : VecD{}));
    storeD(z + j, zv);
    restart += (y - zv) * (zv - xv);
    if (anyLaneD(zv != VecD{})) {
#pragma GCC unroll 8
      for (int l = 0; l < kLanesD; ++l) {
        if (zv[l] != 0.0) {
          index[count] = static_cast<int32_t>(j + l);
          coef[count++] = static_cast<float>(zv[l]);
        }
      }
    }
  }
  double violationSum = 0.0, largestSum = 0.0, restartSum = 0.0;
#pragma GCC unroll 8
  for (int l = 0; l < kLanesD; ++l) {
    violationSum = violation[l] > violationSum ? violation[l] : violationSum;
    largestSum = largest[l] > largestSum ? largest[l] : largestSum;
    restartSum += restart[l];
  }
  for (; j < m; ++j) {
    const double g = static_cast<double>(xG[j]) - c[j];
    const double error = kktError<NonNegative>(x[j], g, s.lambda);
    violationSum = error > violationSum ? error : violationSum;
    const double big = NonNegative ? -g : __builtin_fabs(g);
    largestSum = big > largestSum ? big : largestSum;
    const double y = s.alpha * x[j] + s.beta * p[j];
    const double gy = s.alpha * xG[j] + s.beta * pG[j] - c[j];
    const double w = y - gy * s.invL;
    const double zj = w > s.threshold ? w - s.threshold : (!NonNegative && w < -s.threshold ? w + s.threshold : 0.0);
    z[j] = zj;
    restartSum += (y - zj) * (zj - x[j]);
    if (zj != 0.0) {
      index[count] = static_cast<int32_t>(j);
      coef[count++] = static_cast<float>(zj);
    }
  }
  return {count, violationSum, largestSum, restartSum};
}

saekit::cpu::FistaStepResult fistaStep(const saekit::cpu::FistaStep& s, const double* x, const double* p,
                                       const float* xG, const float* pG, const float* c, double* z,
                                       int32_t* index, float* coef, int64_t m) {
  return s.nonNegative ? fistaStepFor<true>(s, x, p, xG, pG, c, z, index, coef, m)
                       : fistaStepFor<false>(s, x, p, xG, pG, c, z, index, coef, m);
}

template <bool NonNegative>
double largestGradientFor(const float* __restrict xG, const float* __restrict c, int64_t m) {
  VecD largest = VecD{};
  int64_t j = 0;
  for (; j + kLanesD <= m; j += kLanesD) {
    const VecD g = loadWiden(xG + j) - loadWiden(c + j);
    largest = maxD(largest, NonNegative ? -g : absD(g));
  }
  double result = 0.0;
#pragma GCC unroll 8
  for (int l = 0; l < kLanesD; ++l) result = largest[l] > result ? largest[l] : result;
  for (; j < m; ++j) {
    const double g = static_cast<double>(xG[j]) - c[j];
    const double big = NonNegative ? -g : __builtin_fabs(g);
    result = big > result ? big : result;
  }
  return result;
}

double largestGradient(const float* xG, const float* c, int64_t m, bool nonNegative) {
  return nonNegative ? largestGradientFor<true>(xG, c, m) : largestGradientFor<false>(xG, c, m);
}

saekit::cpu::FistaStepSums fistaStepSums(double alpha, double beta, const double* __restrict x,
                                         const double* __restrict p, const double* __restrict z,
                                         const float* __restrict xG, const float* __restrict pG,
                                         const float* __restrict zG, const float* __restrict c, int64_t n) {
  const VecD a = splatD(alpha), b = splatD(beta), half = splatD(0.5);
  VecD along{}, length{}, dotC{}, quadratic{}, l1{}, change{};
  int64_t j = 0;
  for (; j + kLanesD <= n; j += kLanesD) {
    const VecD xv = loadD(x + j), zv = loadD(z + j);
    const VecD xg = loadWiden(xG + j), zg = loadWiden(zG + j), cv = loadWiden(c + j);
    const VecD delta = zv - (a * xv + b * loadD(p + j));
    along += delta * (zg - (a * xg + b * loadWiden(pG + j)));
    length += delta * delta;
    dotC += zv * cv;
    quadratic += zv * zg;
    l1 += absD(zv);
    change += (zv - xv) * (half * (zg + xg) - cv);
  }
  saekit::cpu::FistaStepSums sums{0, 0, 0, 0, 0, 0};
#pragma GCC unroll 8
  for (int l = 0; l < kLanesD; ++l) {
    sums.along += along[l];
    sums.length += length[l];
    sums.zDotC += dotC[l];
    sums.zQuadratic += quadratic[l];
    sums.zL1 += l1[l];
    sums.change += change[l];
  }
  for (; j < n; ++j) {
    const double delta = z[j] - (alpha * x[j] + beta * p[j]);
    sums.along += delta * (zG[j] - (alpha * xG[j] + beta * pG[j]));
    sums.length += delta * delta;
    sums.zDotC += z[j] * c[j];
    sums.zQuadratic += z[j] * zG[j];
    sums.zL1 += __builtin_fabs(z[j]);
    sums.change += (z[j] - x[j]) * (0.5 * (static_cast<double>(zG[j]) + xG[j]) - c[j]);
  }
  return sums;
}

template <bool NonNegative>
void workingSetPrioritiesFor(const float* __restrict xG, const float* __restrict c, const double* __restrict inverseNorms,
                             double u, double lambda, double* __restrict priority, int64_t m) {
  const VecD uv = splatD(u), lambdaV = splatD(lambda), infinity = splatD(__builtin_inf());
  int64_t j = 0;
  for (; j + kLanesD <= m; j += kLanesD) {
    const VecD g = loadWiden(xG + j) - loadWiden(c + j);
    const VecD inverse = loadD(inverseNorms + j);
    const VecD value = (lambdaV - uv * (NonNegative ? -g : absD(g))) * inverse;
    storeD(priority + j, inverse > VecD{} ? value : infinity);
  }
  for (; j < m; ++j) {
    const double g = static_cast<double>(xG[j]) - c[j];
    priority[j] = inverseNorms[j] > 0.0 ? (lambda - u * (NonNegative ? -g : __builtin_fabs(g))) * inverseNorms[j]
                                        : __builtin_inf();
  }
}

void workingSetPriorities(const float* xG, const float* c, const double* inverseNorms, double u, double lambda,
                          bool nonNegative, double* priority, int64_t m) {
  if (nonNegative) {
    workingSetPrioritiesFor<true>(xG, c, inverseNorms, u, lambda, priority, m);
  } else {
    workingSetPrioritiesFor<false>(xG, c, inverseNorms, u, lambda, priority, m);
  }
}

int64_t indicesAtOrBelow(const double* __restrict values, double limit, int32_t* __restrict index, int64_t n) {
  const VecD limitV = splatD(limit);
  int64_t count = 0;
  int64_t j = 0;
  for (; j + kLanesD <= n; j += kLanesD) {
    const VecD v = loadD(values + j);
    if (!anyLaneD(v <= limitV)) continue;  // most blocks: few values are kept
#pragma GCC unroll 8
    for (int l = 0; l < kLanesD; ++l) {
      if (v[l] <= limit) index[count++] = static_cast<int32_t>(j + l);
    }
  }
  for (; j < n; ++j) {
    if (values[j] <= limit) index[count++] = static_cast<int32_t>(j);
  }
  return count;
}

void subtractRows(const float* rows, int64_t ld, const int32_t* __restrict index, const double* __restrict values,
                  int64_t count, double* __restrict out, int64_t n) {
  for (int64_t e = 0; e < count; ++e) {
    const float* row = rows + static_cast<int64_t>(index[e]) * ld;
    const double value = values[e];
    const VecD v = splatD(value);
    int64_t j = 0;
    for (; j + kLanesD <= n; j += kLanesD) storeD(out + j, loadD(out + j) - v * loadWiden(row + j));
    for (; j < n; ++j) out[j] -= value * row[j];
  }
}

const saekit::cpu::Kernels kTable = {
    SAEKIT_KERNELS_NAME, kMr, kNr, microkernel, dot, axpy, adam, extractAbove, reluBias,
    firstNonFinite, firstAbove, combineRows, fistaStep, largestGradient, workingSetPriorities, indicesAtOrBelow,
    subtractRows, fistaStepSums,
};
