// The toy "features in superposition" data stream, as every backend generates it.
//
//   x = sum over active features i of magnitude_i * features[i] + noise * N(0, I_dim)
//
// Independent mode (rank 0): feature i is on with probability probabilities[i], independently.
// Correlated mode (rank r > 0), a Gaussian copula: with e ~ N(0, I_r) shared by the features of
// one sample and eta_i ~ N(0, 1) their own, the latent z_i = loadings[i] . e + s_i eta_i with
// s_i = sqrt(1 - |loadings[i]|^2) is N(0, 1), and feature i is on iff z_i < thresholds[i] =
// Phi^-1(probabilities[i]); so each feature keeps its marginal probability exactly and
// corr(z_i, z_j) = loadings[i] . loadings[j].
//
// Sample k of the stream (k counts from 0 over the stream's life) depends only on the spec and
// k: it has its own random stream seeded from (seed, k). Any range of samples can be drawn
// independently, in parallel, with the same result whatever the thread count.
#pragma once

#include <cstdint>

namespace saekit {

enum class ToyMagnitude {
  Uniform,      // U[0, 1)
  Exponential,  // Exp(1): mean 1
  Constant,     // 1
};

struct ToySpec {
  int64_t dim = 0;
  int64_t numFeatures = 0;
  const float* features = nullptr;        // [numFeatures, dim]
  const double* probabilities = nullptr;  // [numFeatures], each in [0, 1]
  int64_t rank = 0;                       // 0: independent activity
  const float* loadings = nullptr;        // [numFeatures, rank], each row's norm below 1
  const double* thresholds = nullptr;     // [numFeatures]
  double noise = 0.0;                     // standard deviation of each coordinate's noise
  ToyMagnitude magnitude = ToyMagnitude::Uniform;
  uint64_t seed = 0;
};

// Throws a RangeError unless the spec is usable (shapes, probabilities in [0, 1], loadings'
// norms below 1, noise finite and non-negative).
void checkToySpec(const ToySpec& spec);

// Samples [first, first + count) of the stream: x [count, dim] and, when codes is not null,
// the magnitudes [count, numFeatures] (0 for inactive features). Both are overwritten.
void generateToySamplesCpu(const ToySpec& spec, int64_t first, int64_t count, float* x, float* codes,
                           int threads);

}  // namespace saekit
