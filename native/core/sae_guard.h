// The overflow guard both SparseAutoencoder backends run before applying a training step
// (NON_FINITE): its limits, Adam's largest move, and the error. Each backend bounds its own
// gradients and parameters (on the host or on the GPU) and calls these.
#pragma once

#include <cstdint>
#include <string>

#include "sae.h"

namespace saekit {

constexpr double kGradientLimit = 1e18;  // its square, Adam's second moment, stays far inside float's range
constexpr double kParameterLimit = 1e30;

// The most Adam moves one parameter in training step `step` (1-based) at learning rate lr:
// lr (1 - b1) / sqrt(1 - b2) / sqrt(1 - b1^2 / b2), bias-corrected (for b1^2 < b2).
double adamStepBound(const SaeConfig& config, float lr, int64_t step);

// "NaN", "Infinity", "-Infinity" or the value to 3 significant digits.
std::string describeMagnitude(double value);

// NON_FINITE for step stepsTaken + 1; `detail` lists what was found ("loss 1e+40, ...").
[[noreturn]] void throwStepOverflow(int64_t stepsTaken, const std::string& detail);

}  // namespace saekit
