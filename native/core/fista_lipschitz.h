// FISTA's step size, shared by every backend: the Lipschitz constant of the lasso's gradient
// z -> (z D - x) D^T is the largest eigenvalue of D D^T, which is also that of D^T D, so the
// smaller of the two (n = min(m, d)) is enough.
#pragma once

#include <cstdint>

namespace saekit {

// The power iteration's start: a fixed seeded Gaussian vector, so every backend and every run
// takes the same iterations (later calls start from the last estimate, on every backend).
void powerIterationStart(double* v, int64_t n);

// The largest eigenvalue of the symmetric positive semi-definite h [n, n] by power iteration
// from v (normalised here, and left holding the eigenvector estimate, so a later call can
// start from it), to a relative change below 1e-11; 0 for a zero matrix.
double largestEigenvalue(const double* h, int64_t n, double* v);

// The step's Lipschitz constant from that eigenvalue: a relative margin of 1e-6, so rounding
// cannot make the step too long; 1 for an all-zero dictionary (any step converges there).
double lipschitzFromEigenvalue(double largest);

}  // namespace saekit
