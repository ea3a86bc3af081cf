#include "toy.h"

#include <cmath>
#include <string>

#include "error.h"

namespace saekit {

void checkToySpec(const ToySpec& spec) {
  if (spec.dim < 1 || spec.numFeatures < 1) throwRangeError("Expected dim and numFeatures of at least 1");
  if (spec.features == nullptr || spec.probabilities == nullptr) throwRangeError("Expected features and probabilities");
  for (int64_t i = 0; i < spec.numFeatures; ++i) {
    const double p = spec.probabilities[i];
    if (!(p >= 0.0 && p <= 1.0)) {
      throwRangeError("Expected probabilities in [0, 1] but probabilities[" + std::to_string(i) +
                      "] is " + std::to_string(p));
    }
  }
  if (spec.rank < 0) throwRangeError("Expected a non-negative rank");
  if (spec.rank > 0) {
    if (spec.loadings == nullptr || spec.thresholds == nullptr) {
      throwRangeError("Expected loadings and thresholds for correlated activity");
    }
    for (int64_t i = 0; i < spec.numFeatures; ++i) {
      double norm2 = 0.0;
      for (int64_t k = 0; k < spec.rank; ++k) {
        const double a = spec.loadings[i * spec.rank + k];
        norm2 += a * a;
      }
      // The feature's own share of variance, 1 - |a_i|^2, divides the threshold test.
      if (!(norm2 < 1.0)) {
        throwRangeError("Expected loadings rows of norm below 1 but row " + std::to_string(i) + " has squared norm " +
                        std::to_string(norm2));
      }
      if (std::isnan(spec.thresholds[i])) throwRangeError("Expected thresholds that are not NaN");
    }
  }
  if (!(std::isfinite(spec.noise) && spec.noise >= 0.0)) throwRangeError("Expected a finite non-negative noise");
}

}  // namespace saekit
