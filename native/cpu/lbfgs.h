// The passes of lib/lbfgs.ts over the parameters, for when they are many (RICA's weights:
// millions): off the main thread and spread over threads. The search direction by the
// two-loop recursion (Nocedal & Wright, algorithm 7.4) makes the same passes as the
// optimizer's TypeScript did, each updating d with one correction pair and taking the next
// pair's dot product; a line-search trial point, its slope, and a new correction pair are a
// pass each. Every sum is taken in blocks of kLbfgsBlock values, in index order within a
// block and the blocks' sums in block order, so results do not depend on the number of
// threads, and for n <= kLbfgsBlock they are those of plain loops bit for bit.
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

// direction = -g, the steepest descent direction (no pairs yet, or after a reset); returns the
// slope g . direction and sum |g_i| (the first step's length).
struct LbfgsSteepest {
  double slope;
  double l1;
};
LbfgsSteepest lbfgsSteepest(const double* g, int64_t n, double* direction, int threads);

// out = origin + alpha p.
void lbfgsStep(double* out, const double* origin, double alpha, const double* p, int64_t n, int threads);

// g . p and max |g_i|.
struct LbfgsSlope {
  double slope;
  double gMax;
};
LbfgsSlope lbfgsSlope(const double* g, const double* p, int64_t n, int threads);

// s = x1 - x0 and y = g1 - g0, with s . y, s . s and y . y.
struct LbfgsPairProducts {
  double sy, ss, yy;
};
LbfgsPairProducts lbfgsPair(double* s, double* y, const double* x0, const double* x1, const double* g0,
                            const double* g1, int64_t n, int threads);

}  // namespace saekit::cpu
