// What every backend's FISTA solve of one row shares beyond the momentum (fista_momentum.h):
// the working-set schedule and the stopping test. The algorithm is explained above
// cpu/fista_cpu.cc's solveRow; the CUDA coder (cuda/fista_cuda.cu) runs the same one.
#pragma once

#include <math.h>

#include <cstdint>

#include "host_device.h"

namespace saekit {

// Working sets: the first is this many atoms (or twice the start point's support); each later
// one twice the support. A working set larger than half the atoms, or than kFistaMaxWorkingSet
// (the CPU's compact G is its square), is every atom.
// A subproblem is solved until its duality gap is this fraction of its gap at the start (or it
// meets the row's own tolerance): then every atom is checked and the working set renewed.
// A small first W and subproblems solved far: the rows of G a subproblem gathers are most of
// its cost, and a large W gathers rows for atoms the solution never keeps. Over 16-64 and
// 0.0001-0.1 (callgrind, 1024 atoms in dimension 128 at L0 2, 35 and 76, and a dictionary
// learning step), 16 and 0.001 took the fewest instructions and cache misses on the CPU: a
// quarter fewer than 64 and 0.01.
constexpr int64_t kFistaInitialWorkingSet = 16;
constexpr int64_t kFistaMaxWorkingSet = 1024;
constexpr double kFistaSubproblemGapFraction = 0.001;
// When a working set meets the tolerance but the check over every atom does not (the rounding of
// float G tells them apart), the working set's test is tightened by 4, down to this fraction.
constexpr double kFistaSmallestFactor = 1.0 / 4096.0;

// The size of the working set that follows a solution with `support` non-zeros,
SAEKIT_HOST_DEVICE inline int64_t fistaWorkingSetSize(int64_t support) {
  return 2 * support > kFistaInitialWorkingSet ? 2 * support : kFistaInitialWorkingSet;
}
// and whether a working set of that size is every atom of m instead.
SAEKIT_HOST_DEVICE inline bool fistaWorkingSetIsEveryAtom(int64_t size, int64_t m) {
  return 2 * size > m || size > kFistaMaxWorkingSet;
}

// What the stopping tests need of an iterate z, in Gram form (c = x D^T, G = D D^T).
struct FistaSums {
  double dotC = 0;       // z . c
  double quadratic = 0;  // z . (z G)
  double l1 = 0;         // ||z||_1
};

// The duality gap in Gram form, with the dual point theta = u (x - z D) scaled to be feasible:
// u max|g_j| <= lambda (u max(-g_j) <= lambda when nonNegative), where `largest` is that max.
struct FistaGap {
  double gap, dual, scale;
};

SAEKIT_HOST_DEVICE inline FistaGap fistaGap(double squaredNorm, double lambda, const FistaSums& s, double largest) {
  const double u = largest > lambda ? lambda / largest : 1.0;
  const double primal = 0.5 * squaredNorm - s.dotC + 0.5 * s.quadratic + lambda * s.l1;
  const double residual = squaredNorm - 2.0 * s.dotC + s.quadratic;
  const double residualSquared = residual > 0.0 ? residual : 0.0;
  const double dual = u * (squaredNorm - s.dotC) - 0.5 * u * u * residualSquared;
  return FistaGap{primal - dual, dual, u};
}

// A row's stopping test, `factor` times tightened: the KKT violation against tol * max(lambda,
// ||c||_inf) (`stopAt`), or the relative duality gap against gapTol when gapTol > 0.
SAEKIT_HOST_DEVICE inline bool fistaMet(double violation, const FistaGap& gap, double factor, double stopAt,
                                        double gapTol) {
  return violation <= factor * stopAt || (gapTol > 0.0 && gap.gap <= factor * gapTol * gap.dual);
}

// After a subproblem whose working set met its own (tightened) test, once every atom has been
// checked (`everyAtomMet` says whether they meet the row's test): if they do not, though no
// atom outside x's support violates its condition (`violatorsOutside()`, asked only then),
// the two tests differ only by the rounding of float G, and W's test is tightened by 4.
// Returns false where the row should stop instead: W's test is as tight as it goes.
template <class CountViolators>
SAEKIT_HOST_DEVICE bool fistaTightenAfterCheck(bool everyAtomMet, CountViolators&& violatorsOutside,
                                               double& factor) {
  if (everyAtomMet || violatorsOutside() != 0) return true;
  if (factor < kFistaSmallestFactor) return false;
  factor *= 0.25;
  return true;
}

}  // namespace saekit
