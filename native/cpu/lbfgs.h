// The L-BFGS search direction by the two-loop recursion (Nocedal & Wright, algorithm 7.4), for
// lib/lbfgs.ts when the parameters are many (RICA's weights: millions): the same passes as its
// TypeScript, each updating d with one correction pair and taking the next pair's dot product,
// but off the main thread and spread over threads. Each dot product is summed in blocks of
// kLbfgsBlock values, in index order within a block, and the blocks' sums in block order, so
// the result does not depend on the number of threads, and for n <= kLbfgsBlock it is the
// TypeScript's bit for bit.
#pragma once

#include <cstdint>

namespace saekit::cpu {

constexpr int64_t kLbfgsBlock = 16384;

// Correction pairs s_j = x_{j+1} - x_j and y_j = g_{j+1} - g_j, oldest first, with
// rho_j = 1 / (s_j . y_j).
struct LbfgsPairs {
  const double* const* s;
  const double* const* y;
  const double* rho;
  int count;  // at least 1
};

// direction [n] = -H g, with H0 = gamma I; returns the slope g . direction.
double lbfgsDirection(const double* g, int64_t n, const LbfgsPairs& pairs, double gamma, double* direction,
                      int threads);

}  // namespace saekit::cpu
