// The innermost CPU kernels, compiled once per instruction set and chosen at run time,
// so one binary runs on any x86-64 CPU and uses AVX2 and FMA where the CPU has them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace saekit::cpu {

// One Adam update: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= stepSize * m / (sqrt(v) / sqrtBiasCorrection2 + eps), with stepSize = lr / (1 - b1^t).
struct AdamStep {
  float beta1;
  float beta2;
  float eps;
  float stepSize;
  float sqrtBiasCorrection2;
};

// One proximal gradient step of FISTA on a row (native/cpu/fista_cpu.cc), y = alpha x + beta p.
struct FistaStep {
  double alpha;
  double beta;
  double invL;       // the step, 1 / L
  double threshold;  // lambda / L
  double lambda;
  bool nonNegative;
};

struct FistaStepResult {
  int64_t count;     // non-zeros of z appended to index and coef
  double violation;  // the KKT violation of x
  double largest;    // max |g_j| (max -g_j when nonNegative), g = xG - c, for the dual point
  double restart;    // sum over j of (y_j - z_j)(z_j - x_j): momentum against the step when > 0
};

// What FISTA needs of a step once z G is known, over the working set's n atoms (x, p and z dense
// there, y = alpha x + beta p).
struct FistaStepSums {
  double along;     // (z - y) . (z G - y G): G's curvature along z - y, times ||z - y||^2
  double length;    // ||z - y||^2
  double zDotC;     // z . c
  double zQuadratic;  // z . z G
  double zL1;       // ||z||_1
  double change;    // (z - x) . ((z G + x G) / 2 - c): P(z) - P(x) less lambda (||z||_1 - ||x||_1)
};

struct Kernels {
  const char* name;
  int mr;  // rows of the matrix-product register tile
  int nr;  // columns of the tile; packed panels of B are nr wide

  // c[i*ldc + j] (+)= sum over k < kc of a[k*mr + i] * b[k*nr + j], for i < mr, j < nr.
  void (*microkernel)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                      bool accumulate);
  float (*dot)(const float* x, const float* y, int64_t n);
  // y += alpha * x
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);
  void (*adam)(float* param, float* m, float* v, const float* grad, int64_t n,
               const AdamStep& step);
  // For each j < n with pre[j] + bias[j] > above, appends j and that value to indices/values
  // (which must have room for n entries). Returns how many were appended. above = 0 is the
  // ReLU's extraction.
  int64_t (*extractAbove)(const float* pre, const float* bias, int64_t n, float above, int32_t* indices,
                          float* values);
  // row[j] = max(row[j] + bias[j], 0)
  void (*reluBias)(float* row, const float* bias, int64_t n);
  // Index of the first value that is NaN or infinite, or n if there is none.
  int64_t (*firstNonFinite)(const float* x, int64_t n);
  // Index of the first j with pre[j] + bias[j] > threshold, or n if there is none.
  int64_t (*firstAbove)(const float* pre, const float* bias, int64_t n, float threshold);
  // out[j] = sum over e < count of coef[e] * rows[index[e] * ld + j], for j < n: a sparse
  // vector times a dense matrix. The sums stay in registers across all `count` rows.
  void (*combineRows)(const float* rows, int64_t ld, const int32_t* index, const float* coef,
                      int64_t count, float* out, int64_t n);
  // For j < m, with y = alpha x + beta p and gy = alpha xG + beta pG - c (the gradient at y):
  // z_j = y_j - gy_j / L soft-thresholded by lambda / L (and clamped at 0 when nonNegative);
  // every j with z_j != 0 is appended to index, z_j (in float) to coef. In the same pass, the
  // KKT violation of x with g = xG - c: max of |g_j + lambda sign(x_j)| where x_j != 0 and
  // max(|g_j| - lambda, 0) where x_j == 0 (max(-g_j - lambda, 0) when nonNegative).
  FistaStepResult (*fistaStep)(const FistaStep& step, const double* x, const double* p, const float* xG,
                               const float* pG, const float* c, double* z, int32_t* index, float* coef,
                               int64_t m);
  // The larger of 0 and max over j < m of |g_j| (of -g_j when nonNegative), g = xG - c in
  // double: what scales the dual point, and, less lambda, the KKT violation of every zero code.
  double (*largestGradient)(const float* xG, const float* c, int64_t m, bool nonNegative);
  // priority[j] = (lambda - u v_j) inverseNorms[j], v_j = |g_j| (-g_j when nonNegative), g = xG - c in
  // double, for j < m: how near atom j is to violating its condition in the Gap Safe order (smaller:
  // nearer), for choosing working sets; infinite where inverseNorms[j] is 0 (a zero atom).
  void (*workingSetPriorities)(const float* xG, const float* c, const double* inverseNorms, double u, double lambda,
                               bool nonNegative, double* priority, int64_t m);
  // Appends to index every j < n with values[j] <= limit, increasing; returns how many.
  int64_t (*indicesAtOrBelow)(const double* values, double limit, int32_t* index, int64_t n);
  // out[j] -= sum over e < count of values[e] * rows[index[e] * ld + j], for j < n, in double
  // (e in order): the residual x - z D of a sparse z, to double precision.
  void (*subtractRows)(const float* rows, int64_t ld, const int32_t* index, const double* values, int64_t count,
                       double* out, int64_t n);
  // FistaStepSums of z against x, p and y = alpha x + beta p, for j < n.
  FistaStepSums (*fistaStepSums)(double alpha, double beta, const double* x, const double* p, const double* z,
                                 const float* xG, const float* pG, const float* zG, const float* c, int64_t n);
};

// The best kernels this CPU runs. SAEKIT_SIMD=generic (or avx2) caps the choice, for
// testing the portable path or working around a CPU that misreports its features.
const Kernels& kernels();

// Every kernel set that this build contains and this CPU can run, portable first.
std::vector<const Kernels*> availableKernels();

// The set with this name if this CPU can run it; the default set for an empty name; else null.
const Kernels* kernelsNamed(const std::string& name);

const Kernels& genericKernels();
#if defined(__x86_64__) || defined(_M_X64)
const Kernels& avx2Kernels();
#endif

}  // namespace saekit::cpu
