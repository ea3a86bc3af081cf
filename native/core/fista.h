// Lasso sparse coding by FISTA, and dictionary learning on top of it, as every backend
// implements them. For a dictionary D [m, d] (one atom per row) and each row x [d]:
//
//   min over z [m] of  P(z) = 0.5 ||x - z D||^2 + lambda ||z||_1      (z >= 0 if nonNegative)
//
// solved in Gram form: G = D D^T [m, m] and c = x D^T are formed once, so that the gradient
// z G - c of the smooth part is a sum over the non-zeros of z (nnz(z) m per iteration, not
// m d). The iteration is monotone FISTA (Beck & Teboulle 2009b) with step 1/L, L the largest
// eigenvalue of D D^T by power iteration: an iterate is kept only if it lowers P, so P never
// increases; the momentum restarts when it points against the step (O'Donoghue & Candes 2015).
// A row stops when its KKT violation
//
//   v = max over j of  |g_j + lambda sign(z_j)|         where z_j != 0
//                      max(|g_j| - lambda, 0)           where z_j == 0  (max(-g_j - lambda, 0)
//                                                        when nonNegative)     with g = z G - c
//
// is at most tol * max(lambda, ||c||_inf) (||c||_inf is the smallest lambda whose solution
// is z = 0, so the test is scale-free), or, when gapTol > 0, when the duality gap is at most
// gapTol times the dual objective (which bounds (P(z) - P*) / P* by gapTol), or after maxIter
// iterations.
//
// The CPU iterates on working sets (Massias, Gramfort & Salmon 2018, "Celer"): the support and
// the atoms nearest to violating their condition, about twice the support, the others held at
// zero, with the step 1/L found by backtracking on that set (its L is a fraction of the L of
// every atom), and the stopping test made over every atom after each set's subproblem (see
// cpu/fista_cpu.cc). The CUDA coder does the same, one warp per row, but chooses each working
// set by an exact selection (cuda/fista_cuda.cu). Both stop on the same test, so they agree to
// the tolerance, not iterate for iterate.
//
// Dictionary learning (Mairal, Bach, Ponce & Sapiro 2009, as in scikit-learn's
// MiniBatchDictionaryLearning): per batch, codes by the solver above (warm-started from the
// codes the same rows got before, when rows are identified), then the sufficient statistics
// A = sum z^T z [m, m] and B = sum z^T x [m, d] are decayed with scikit-learn's forgetting
// schedule and the batch added, and one pass of block coordinate descent updates each atom
// d_k += (B_k - A_k D) / A_kk and projects it to unit norm. Atoms with A_kk below 1e-6 times
// the batch's mean ||x||^2 are unused: they are redrawn from a random batch row plus 1% noise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "buffer.h"

namespace saekit {

struct FistaConfig {
  int64_t dIn = 0;      // d
  int64_t dHidden = 0;  // m, the number of atoms
  double lambda = 0.0;
  int64_t maxIter = 200;
  double tol = 1e-6;
  double gapTol = 0.0;  // 0: no duality-gap stop
  bool nonNegative = false;
  // Allocates the statistics of dictionary learning (learnStep); coders leave it off.
  bool learning = false;
  uint64_t seed = 0;
  int threads = 1;
  // CPU kernel set ("generic", "avx2"); empty for the best this CPU runs. For tests.
  std::string cpuKernels;
  int cudaDevice = 0;  // the GPU a CUDA backend runs on (as cudaSetDevice numbers them)
  // Rows the CUDA backend solves per pass; 0 for its default (thousands). For tests.
  int64_t cudaPassRows = 0;
};

// What one solve reports for each row.
struct FistaRowResults {
  Buffer<int32_t> iterations;  // proximal gradient steps taken
  Buffer<double> objective;    // P(z), from the explicit residual x - z D in double
  Buffer<double> gap;          // duality gap P(z) - D(theta), an upper bound on P(z) - P*
  Buffer<double> kkt;          // KKT violation v / max(lambda, ||c||_inf)
  Buffer<uint8_t> converged;   // 1 if the row met tol or gapTol, 0 if it ran out of iterations

  void resize(int64_t rows) {
    const size_t n = static_cast<size_t>(rows);
    iterations.resize(n);
    objective.resize(n);
    gap.resize(n);
    kkt.resize(n);
    converged.resize(n);
  }
};

struct FistaStepStats {
  double loss = 0;            // mean over rows of P(z) at the batch's codes, before the update
  double mse = 0;             // mean over rows and coordinates of (x - z D)^2
  double l1 = 0;              // mean over rows of ||z||_1
  double l0 = 0;              // mean over rows of the number of non-zero codes
  double iterations = 0;      // mean over rows of FISTA iterations
  int64_t maxIterations = 0;  // max over rows
  int64_t resampled = 0;      // unused atoms redrawn from the batch in this step
};

class FistaBackend {
 public:
  virtual ~FistaBackend() = default;

  virtual const FistaConfig& config() const = 0;
  virtual const char* device() const = 0;
  virtual int64_t stepsTaken() const = 0;
  virtual size_t bytesHeld() const = 0;

  // The L of the step 1/L for the current dictionary (computed when the dictionary changed).
  virtual double lipschitz() = 0;

  // Codes [rows, dHidden] for x [rows, dIn], starting from `init` [rows, dHidden] (projected
  // onto z >= 0 when nonNegative) or from zero when init is null.
  virtual void encode(const float* x, int64_t rows, const float* init, float* codes,
                      FistaRowResults& results) = 0;

  // One dictionary learning step on x [rows, dIn]. `rowIds` (or null) names each row, so the
  // codes a row gets are kept and start its solve the next time the same id is seen.
  virtual FistaStepStats learnStep(const float* x, int64_t rows, const int32_t* rowIds) = 0;
  // Drops the codes kept for warm starts (the next rows with the same ids are other data).
  virtual void forgetCodes() = 0;

  virtual void getDictionary(float* out) const = 0;  // [dHidden, dIn]
};

// Bytes held for the dictionary, its packed copy, the Gram matrix and (when learning) the
// statistics, before per-thread scratch. Saturates for absurd shapes.
size_t fistaStateBytes(const FistaConfig& config);

// `dictionary` [dHidden, dIn] is used as given; when null, atoms are drawn from the seed
// (standard normal rows, normalised).
std::unique_ptr<FistaBackend> createCpuFista(const FistaConfig& config, const float* dictionary);

// The same on the GPU (learning codes there and updates the atoms on the host, with the CPU's
// code); BACKEND_UNAVAILABLE where no usable GPU is present. Only in builds with SAEKIT_WITH_CUDA.
std::unique_ptr<FistaBackend> createCudaFista(const FistaConfig& config, const float* dictionary);

}  // namespace saekit
