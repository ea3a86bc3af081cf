// The standard normal distribution function and its inverse, to double precision. The toy
// data's correlated mode thresholds Gaussian latents with them, so that each feature keeps
// its activation probability exactly.
#pragma once

#include <cmath>
#include <limits>

namespace saekit {

// Phi(x) = P(Z <= x) for Z ~ N(0, 1). erfc keeps full relative precision in the lower tail.
inline double normalCdf(double x) { return 0.5 * std::erfc(-x * 0.70710678118654752440); }

// Phi^-1(p): -infinity at 0, +infinity at 1, NaN outside [0, 1]. Acklam's rational
// approximation (relative error about 1e-9) polished by Halley steps on Phi, which bring it to
// the last few bits of a double. Upper-half values come from the lower half by symmetry, where
// 1 - p is exact, so no precision is lost near 1.
inline double normalQuantile(double p) {
  if (!(p >= 0.0 && p <= 1.0)) return std::numeric_limits<double>::quiet_NaN();
  if (p > 0.5) return -normalQuantile(1.0 - p);
  if (p == 0.0) return -std::numeric_limits<double>::infinity();
  constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                          1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                          6.680131188771972e+01,  -1.328068155288572e+01};
  constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                          -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                          3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2.0 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  }
  // Halley's method on f(x) = Phi(x) - p: cubic convergence; two steps reach rounding level
  // from Acklam's start, the third is a guard for the far tail.
  for (int step = 0; step < 3; ++step) {
    const double error = normalCdf(x) - p;
    const double u = error * 2.5066282746310002 * std::exp(0.5 * x * x);  // error / phi(x)
    const double next = x - u / (1.0 + 0.5 * x * u);
    if (!std::isfinite(next)) break;
    x = next;
  }
  return x;
}

// Decides u < Phi(c) exactly, without evaluating Phi in most cases: Phi at a fine grid of c
// brackets Phi(c), and only a u that falls inside the bracket (a fraction of about
// phi(c) * 0.0044 of draws) needs erfc. The toy data's correlated mode makes this test once per
// feature per sample.
class NormalCdfBrackets {
 public:
  static const NormalCdfBrackets& table() {
    static const NormalCdfBrackets instance;
    return instance;
  }

  bool below(double u, double c) const {
    const double position = (c - kMin) * kInverseStep;
    if (position >= 0.0 && position < kIntervals) {
      const int k = static_cast<int>(position);
      if (u < cdf_[k]) return true;
      if (u >= cdf_[k + 1]) return false;
    } else if (position < 0.0) {  // also c = -infinity
      if (u >= cdf_[0]) return false;
    } else {  // also c = +infinity
      if (u < cdf_[kIntervals]) return true;
    }
    return u < normalCdf(c);
  }

 private:
  static constexpr int kIntervals = 4096;
  static constexpr double kMin = -9.0;
  static constexpr double kStep = 18.0 / kIntervals;
  static constexpr double kInverseStep = kIntervals / 18.0;

  NormalCdfBrackets() {
    for (int k = 0; k <= kIntervals; ++k) cdf_[k] = normalCdf(kMin + k * kStep);
  }

  double cdf_[kIntervals + 1];
};

}  // namespace saekit
