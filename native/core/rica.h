// Reconstruction ICA (Le, Karpenko, Ngiam & Ng, NeurIPS 2011) as every backend implements it.
//
//   V    = W, or W with each row scaled to unit norm (normalizeRows, the reference's default)
//   y    = V x                                          V [dHidden, dIn]
//   cost = mean over rows of  lambda * sum_j g(y_j) + 0.5 * ||V^T y - x||^2,
//          g(u) = sqrt(u^2 + epsilon)
//
// The backend computes the cost and its gradient with respect to W (through the row
// normalisation); the optimizer that uses them (L-BFGS) lives in TypeScript. Adam, the
// minibatch alternative, is one native step like the sparse autoencoder's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace saekit {

struct RicaConfig {
  int64_t dIn = 0;
  int64_t dHidden = 0;
  float lambda = 0.0f;
  float epsilon = 1e-2f;
  bool normalizeRows = true;
  // Adam, for adamStep only.
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  uint64_t seed = 0;
  int threads = 1;
  // CPU kernel set ("generic", "avx2"); empty for the best this CPU runs. For tests.
  std::string cpuKernels;
  int cudaDevice = 0;  // the GPU a CUDA backend runs on (as cudaSetDevice numbers them)
};

// Means over the rows of x. loss = lambda * sparsity + reconstruction.
struct RicaStats {
  double loss = 0;
  double sparsity = 0;        // sum_j g(y_j)
  double reconstruction = 0;  // 0.5 * ||V^T y - x||^2
  // Number of units with |y_j| > sqrt(epsilon): where g turns from quadratic (near zero) to
  // linear. RICA's codes are dense; this counts the units the penalty treats as active.
  double l0 = 0;
};

class RicaBackend {
 public:
  virtual ~RicaBackend() = default;

  virtual const RicaConfig& config() const = 0;
  virtual const char* device() const = 0;
  virtual int64_t stepsTaken() const = 0;
  virtual size_t bytesHeld() const = 0;

  // Cost on x [rows, dIn] at the weights W = `weights` [dHidden, dIn] (not the model's own),
  // and its gradient with respect to W into `gradient` [dHidden, dIn]. `sameX` says that x is
  // the array of the previous costGradient call, unchanged since (L-BFGS evaluates one data set
  // many times): a backend may then skip what it did with x before (the finite check, the
  // copy to the GPU), where x and rows are those it did it for and nothing has overwritten it.
  virtual RicaStats costGradient(const float* weights, const float* x, int64_t rows, float* gradient,
                                 bool sameX) = 0;
  // One Adam step on the model's weights with the gradient on x. Returns the cost before it.
  virtual RicaStats adamStep(const float* x, int64_t rows) = 0;
  // codes [rows, dHidden] = x V^T
  virtual void encode(const float* x, int64_t rows, float* codes) = 0;

  virtual void getWeights(float* out) const = 0;  // W [dHidden, dIn]
  virtual void setWeights(const float* weights) = 0;
  // V [dHidden, dIn]: the rows the cost uses (unit norm when normalizeRows; a zero row stays zero).
  virtual void dictionary(float* out) const = 0;
};

// Bytes a model of this shape holds before any per-batch scratch.
size_t ricaStateBytes(const RicaConfig& config);

std::unique_ptr<RicaBackend> createCpuRica(const RicaConfig& config);

// Throws BACKEND_UNAVAILABLE where no usable GPU is present (native/cuda/status.h). Only in
// builds with SAEKIT_WITH_CUDA.
std::unique_ptr<RicaBackend> createCudaRica(const RicaConfig& config);

}  // namespace saekit
