#include "fista_lipschitz.h"

#include <cmath>
#include <vector>

#include "rng.h"

namespace saekit {
namespace {

constexpr int64_t kPowerMaxIterations = 5000;
constexpr double kPowerTolerance = 1e-11;  // relative change of the estimate between iterations
constexpr double kLipschitzMargin = 1e-6;

}  // namespace

void powerIterationStart(double* v, int64_t n) {
  Rng rng(0x9e3779b97f4a7c15ULL);
  for (int64_t i = 0; i < n; ++i) v[i] = rng.normal();
}

double largestEigenvalue(const double* h, int64_t n, double* v) {
  double norm = 0.0;
  for (int64_t i = 0; i < n; ++i) norm += v[i] * v[i];
  if (!(norm > 0.0)) return 0.0;
  for (int64_t i = 0; i < n; ++i) v[i] /= std::sqrt(norm);
  std::vector<double> w(static_cast<size_t>(n));
  double estimate = 0.0;
  for (int64_t iteration = 0; iteration < kPowerMaxIterations; ++iteration) {
    double rayleigh = 0.0, squared = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double* row = h + i * n;
      double sum = 0.0;
      for (int64_t j = 0; j < n; ++j) sum += row[j] * v[j];
      w[i] = sum;
      rayleigh += v[i] * sum;
      squared += sum * sum;
    }
    if (!(squared > 0.0)) return 0.0;
    const double inverse = 1.0 / std::sqrt(squared);
    for (int64_t i = 0; i < n; ++i) v[i] = w[i] * inverse;
    const bool settled = std::fabs(rayleigh - estimate) <= kPowerTolerance * rayleigh;
    estimate = rayleigh;
    if (settled) break;
  }
  return estimate;
}

double lipschitzFromEigenvalue(double largest) { return largest > 0.0 ? largest * (1.0 + kLipschitzMargin) : 1.0; }

}  // namespace saekit
