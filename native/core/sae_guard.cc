#include "sae_guard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "error.h"

namespace saekit {

double adamStepBound(const SaeConfig& config, float lr, int64_t step) {
  const double b1 = config.beta1, b2 = config.beta2;
  return static_cast<double>(lr) * (1.0 - b1) / std::sqrt(1.0 - b2) / std::sqrt(std::max(1e-12, 1.0 - b1 * b1 / b2)) /
         (1.0 - std::pow(b1, static_cast<double>(step)));
}

std::string describeMagnitude(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3g", value);
  return buffer;
}

void throwStepOverflow(int64_t stepsTaken, const std::string& detail) {
  throwError("NON_FINITE", "Training step " + std::to_string(stepsTaken + 1) +
                               " would make gradients or parameters overflow (" + detail +
                               "); the model keeps the parameters of step " + std::to_string(stepsTaken) +
                               ". Lower the learning rate or check the scale of the data.");
}

}  // namespace saekit
