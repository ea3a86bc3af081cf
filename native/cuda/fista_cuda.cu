// FISTA on the GPU: the lasso coding of native/cpu/fista_cpu.cc (read its solveRow first), the
// same algorithm: monotone FISTA with the gradient restart, on working sets, with the
// backtracking step (1/L, L from the largest ||d_j||^2 up, never past the L of every atom); and
// FistaDictionary's learning step, which codes the batch here and leaves the rest (the
// statistics A and B and the pass over the atoms, cpu/fista_learning.h) to the host code the
// CPU backend runs too: that pass is sequential over the atoms, and the coding is most of a
// step's work.
//
// G = D D^T and c = x D^T are FP32 products (cuda::multiply; G is symmetric bit for bit, as the
// P(z) - P(x) identity needs, since fmaf(a, b, s) == fmaf(b, a, s)). L comes from the same
// double power iteration as on the CPU, on the host, over the smaller of D D^T and D^T D.
//
// Each row is solved by one warp, start to finish, in one kernel (solveRowsKernel). A working
// set is a few dozen atoms, so a warp's 32 lanes cover it in a pass or two, and every decision
// comes from a warp reduction (a butterfly of shuffles, which leaves the same bits in every
// lane) rather than a block's barriers: the control flow is uniform over the warp, and the
// results are deterministic. The iterates (double), their products with G (float, read from G
// in global memory at the working set's columns: G is small enough for L2 when the atoms are
// a few thousand) and their non-zeros (increasing, compacted with ballots) live in a per-warp
// workspace in global memory, written and read across lanes with __syncwarp between.
//
// Differences from the CPU, none of which changes what a row converges to: a working set's
// atoms are the least of float priorities, found by bisection on their bits (ties to the lower
// atom), where the CPU ranks double ones (a sampled threshold, then nth_element), so near-ties
// may go the other way; and G is read in place, not copied into a compact square per working
// set; and the step's threshold and the backtracking curvature multiply by a reciprocal where
// the CPU divides (an ulp apart at most). In the GPU emulator, where G and c are the CPU's bit
// for bit, the codes and iteration counts of cuda_tests' and the parity tests' rows are the
// CPU's; other rows may take a different number of iterations to the same tolerance.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "../core/buffer.h"
#include "../core/checks.h"
#include "../core/error.h"
#include "../core/fista.h"
#include "../core/fista_lipschitz.h"
#include "../core/fista_momentum.h"
#include "../core/fista_working_set.h"
#include "../core/memory.h"
#include "../core/thread_pool.h"
#include "../cpu/fista_learning.h"
#include "../cpu/kernels.h"
#include "../cpu/model_support.h"
#include "common.cuh"
#include "device_buffer.cuh"
#include "matmul.cuh"
#include "reduce.cuh"
#include "sparse.cuh"
#include "status.h"

namespace saekit {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullWarp = 0xffffffffu;
// Rows per pass: bounds x, c and the codes to 256 MiB each.
constexpr int64_t kPassRows = 8192;
constexpr int64_t kDenseChunkFloats = int64_t{64} << 20;
// Warps solving at once (each loops over rows), and the bytes their workspaces may take.
constexpr int64_t kMaxSolverBlocks = 1024;
constexpr int64_t kWorkspaceBytes = int64_t{256} << 20;

// Per solver warp: three iterate slots of m doubles, their products with G (floats) and their
// non-zeros as (local atom, value in float) lists; x G over every atom and c on the working
// set (floats); the atoms' priorities (as ordered keys); the working set and x's
// support (atom indices); x's values on its support (doubles).
size_t workspaceBytesPerSolver(int64_t m) {
  return static_cast<size_t>(m) * (3 * (8 + 4 + 4 + 4) + 4 + 4 + 4 + 2 * 4 + 8);
}

struct SolveArgs {
  const float* gram;  // G [m, m]
  const float* c;     // [rows, m]
  const float* x;     // [rows, d]
  const float* init;  // [rows, m] or null
  const float* dictionary;  // [m, d]
  const double* inverseNorms;  // [m]: 1 / ||d_j||, 0 for a zero atom
  int64_t rows, m, d;
  double lambda, lipschitz, tol, gapTol;
  const double* largestAtomSquaredNorm;  // max ||d_j||^2, from G's diagonal: each row's first L
  int64_t maxIter;
  bool nonNegative;
  // Workspaces, [solvers][...] each (see workspaceBytesPerSolver).
  double* values;     // [3][m]
  float* products;    // [3][m]
  int32_t* nonzeros;  // [3][m]
  float* coef;        // [3][m]
  float* checkProducts;  // [m]
  float* workingC;        // [m]
  uint32_t* keys;     // [m]
  int32_t* atoms;     // [2][m]
  double* solution;   // [m]
  // Outputs per row.
  float* codes;  // [rows, m]
  int32_t* iterations;
  double* objective;
  double* gap;
  double* kkt;
  uint8_t* converged;
  // Per row when not null (learning's statistics): ||x - z D||^2 and ||z||_1, in double.
  double* squaredError;
  double* l1;
};

// A float's bits as an unsigned key in the float's order (negatives below positives).
__device__ __forceinline__ uint32_t orderedKey(float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  return bits & 0x80000000u ? ~bits : bits | 0x80000000u;
}
constexpr uint32_t kInfiniteKey = 0xff800000u;  // orderedKey(+infinity)
constexpr uint32_t kSupportKey = 0xffffffffu;   // above every float's key: never chosen

// The lane's part of the warp's list being built: appends (local atom j, value) when keep, in
// increasing j across the calls of one pass (each lane calls once per tile of 32 with the same
// `count`, the list's length so far) and returns the new length, the same in every lane.
template <class T>
__device__ __forceinline__ int64_t appendToList(bool keep, int32_t j, T value, int32_t* list, T* values,
                                                int64_t count) {
  const int lane = threadIdx.x & 31;
  const unsigned ballot = __ballot_sync(kFullWarp, keep);
  if (keep) {
    const int64_t at = count + __popc(ballot & ((1u << lane) - 1u));
    list[at] = j;
    if (values != nullptr) values[at] = value;
  }
  return count + __popc(ballot);
}

// A solver warp's workspace, by arithmetic (an array of pointers indexed by a run-time slot
// would live in local memory).
struct Workspace {
  const SolveArgs& a;
  int64_t solver;
  int64_t m;
  __device__ double* values(int s) const { return a.values + (solver * 3 + s) * m; }
  __device__ float* products(int s) const { return a.products + (solver * 3 + s) * m; }
  __device__ int32_t* nonzeros(int s) const { return a.nonzeros + (solver * 3 + s) * m; }
  __device__ float* coef(int s) const { return a.coef + (solver * 3 + s) * m; }
  __device__ float* checkProducts() const { return a.checkProducts + solver * m; }  // x G over every atom
  __device__ float* workingC() const { return a.workingC + solver * m; }
  __device__ uint32_t* keys() const { return a.keys + solver * m; }
  __device__ int32_t* workingSet() const { return a.atoms + solver * 2 * m; }  // increasing
  __device__ int32_t* xIndex() const { return a.atoms + (solver * 2 + 1) * m; }  // increasing
  __device__ double* xValue() const { return a.solution + solver * m; }
};

// inverseNorms[j] = 1 / sqrt(G_jj) (0 where G_jj <= 0), and *largest = max(G_jj, 0): one block.
__global__ void __launch_bounds__(kThreads) atomNormsKernel(const float* gram, int64_t m, double* inverseNorms,
                                                            double* largest) {
  __shared__ double scratch[kWarps];
  double most = 0.0;
  for (int64_t j = threadIdx.x; j < m; j += kThreads) {
    const double squared = fmax(static_cast<double>(gram[j * m + j]), 0.0);
    inverseNorms[j] = squared > 0.0 ? 1.0 / sqrt(squared) : 0.0;
    most = fmax(most, squared);
  }
  most = warpAllMax(most);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = most;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 0; w < kWarps; ++w) most = fmax(most, scratch[w]);
    *largest = most;
  }
}

// One warp per row at a time (grid-stride over rows). See fista_cpu.cc's solveRow for the
// algorithm; the comments here are about the GPU.
__global__ void __launch_bounds__(kThreads) solveRowsKernel(SolveArgs a, int64_t solvers) {
  const int lane = threadIdx.x & 31;
  const int64_t solver = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (solver >= solvers) return;  // whole warps: nothing below waits for the block
  const int64_t m = a.m;
  const int64_t d = a.d;
  const double lambda = a.lambda;
  const bool nonNegative = a.nonNegative;
  const Workspace ws{a, solver, m};
  float* const xG = ws.checkProducts();
  int32_t* const xIndex = ws.xIndex();
  double* const xValue = ws.xValue();

  struct Check {
    double violation, largest;
    FistaGap gap;
    FistaSums sums;  // x's, which a subproblem on x starts from
  };

  for (int64_t row = solver; row < a.rows; row += solvers) {
    const float* cFull = a.c + row * m;
    const float* xRow = a.x + row * d;
    double squaredNorm = 0.0, cInf = 0.0;
    for (int64_t i = lane; i < d; i += 32) squaredNorm += static_cast<double>(xRow[i]) * xRow[i];
    for (int64_t j = lane; j < m; j += 32) cInf = fmax(cInf, fabs(static_cast<double>(cFull[j])));
    squaredNorm = warpAllSum(squaredNorm);
    cInf = warpAllMax(cInf);
    const double scale = fmax(lambda, cInf);
    const double stopAt = a.tol * scale;
    const auto met = [&](double violation, const FistaGap& gap, double factor) {
      return fistaMet(violation, gap, factor, stopAt, a.gapTol);
    };

    // x over every atom (xIndex, xValue): the start point, projected onto z >= 0 when nonNegative.
    int64_t xCount = 0;
    for (int64_t j0 = 0; j0 < m; j0 += 32) {
      const int64_t j = j0 + lane;
      float value = 0.0f;
      if (j < m && a.init != nullptr) {
        value = a.init[row * m + j];
        if (nonNegative) value = fmaxf(value, 0.0f);
      }
      xCount = appendToList(value != 0.0f, static_cast<int32_t>(j), static_cast<double>(value), xIndex, xValue, xCount);
    }
    __syncwarp();

    // The conditions over every atom, from x G in float (left in checkProducts): the stopping
    // test. In float, as the iterations' products are: a test in double would ask for more than
    // the float iteration can reach when tol is near float's resolution.
    const auto checkEveryAtom = [&]() {
      double largest = 0.0;
      for (int64_t j = lane; j < m; j += 32) {
        float sum = 0.0f;
        for (int64_t e = 0; e < xCount; ++e) {
          sum = fmaf(static_cast<float>(xValue[e]), a.gram[static_cast<int64_t>(xIndex[e]) * m + j], sum);
        }
        xG[j] = sum;
        const double g = static_cast<double>(sum) - cFull[j];
        largest = fmax(largest, nonNegative ? -g : fabs(g));
      }
      __syncwarp();
      largest = warpAllMax(largest);
      // A zero code's violation is at most largest - lambda; x's own atoms' one by one.
      FistaSums s;
      double violation = 0.0;
      for (int64_t e = lane; e < xCount; e += 32) {
        const int32_t j = xIndex[e];
        const double v = xValue[e];
        s.dotC += v * cFull[j];
        s.quadratic += v * xG[j];
        s.l1 += fabs(v);
        const double g = static_cast<double>(xG[j]) - cFull[j];
        violation = fmax(violation, fabs(g + (v > 0.0 ? lambda : -lambda)));
      }
      s.dotC = warpAllSum(s.dotC);
      s.quadratic = warpAllSum(s.quadratic);
      s.l1 = warpAllSum(s.l1);
      violation = fmax(warpAllMax(violation), fmax(largest - lambda, 0.0));
      return Check{violation, largest, fistaGap(squaredNorm, lambda, s, largest), s};
    };

    // Atoms outside x's support that violate their condition, by the check just made.
    const auto violatorsOutside = [&]() {
      const auto violates = [&](int64_t j) {
        const double g = static_cast<double>(xG[j]) - cFull[j];
        return (nonNegative ? -g : fabs(g)) > lambda;
      };
      int count = 0;
      for (int64_t j = lane; j < m; j += 32) count += violates(j);
      for (int64_t e = lane; e < xCount; e += 32) count -= violates(xIndex[e]);
      return warpAllSum(count);
    };

    // The next working set (in workingSet(), increasing) from the check just made: x's support
    // and the `extra` atoms of least priority (lambda - u |g_j|) / ||d_j|| (Gap Safe's order, as
    // on the CPU), ties to the lower atom, zero atoms never. Its size, or m for every atom.
    const auto chooseWorkingSet = [&](const Check& check) -> int64_t {
      const int64_t size = fistaWorkingSetSize(xCount);
      if (fistaWorkingSetIsEveryAtom(size, m)) return m;
      const int64_t extra = size - xCount;
      uint32_t* keys = ws.keys();
      const double u = check.gap.scale;
      for (int64_t j = lane; j < m; j += 32) {
        const double g = static_cast<double>(xG[j]) - cFull[j];
        const double inverse = a.inverseNorms[j];
        keys[j] = inverse > 0.0 ? orderedKey(static_cast<float>((lambda - u * (nonNegative ? -g : fabs(g))) * inverse))
                                : kInfiniteKey;
      }
      __syncwarp();
      for (int64_t e = lane; e < xCount; e += 32) keys[xIndex[e]] = kSupportKey;
      __syncwarp();
      // The extra-th smallest key, by bisection: there are at least `extra` keys below
      // kSupportKey, since m >= 2 size.
      uint32_t low = 0, high = kSupportKey - 1;
      while (low < high) {
        const uint32_t mid = low + (high - low) / 2;
        int64_t atOrBelow = 0;
        for (int64_t j = lane; j < m; j += 32) atOrBelow += keys[j] <= mid;
        if (warpAllSum(atOrBelow) >= extra) {
          high = mid;
        } else {
          low = mid + 1;
        }
      }
      // Zero atoms (infinite priority) are never chosen, even if fewer atoms are left.
      const uint32_t bound = low < kInfiniteKey ? low : kInfiniteKey;
      int64_t below = 0;
      for (int64_t j = lane; j < m; j += 32) below += keys[j] < bound;
      const int64_t ties = low < kInfiniteKey ? extra - warpAllSum(below) : 0;
      int32_t* atoms = ws.workingSet();
      int64_t n = 0, tiesSeen = 0;
      for (int64_t j0 = 0; j0 < m; j0 += 32) {
        const int64_t j = j0 + lane;
        const uint32_t key = j < m ? keys[j] : 0u;
        const bool tie = j < m && key == bound && ties > 0;
        const unsigned tieBallot = __ballot_sync(kFullWarp, tie);
        const int64_t rank = tiesSeen + __popc(tieBallot & ((1u << lane) - 1u));
        tiesSeen += __popc(tieBallot);
        const bool chosen = j < m && (key == kSupportKey || key < bound || (tie && rank < ties));
        n = appendToList<float>(chosen, static_cast<int32_t>(j), 0.0f, atoms, nullptr, n);
      }
      __syncwarp();
      return n;
    };

    FistaMomentum momentum;
    int& xs = momentum.xs;
    int& ps = momentum.ps;
    int& zs = momentum.zs;
    const double largestAtom = *a.largestAtomSquaredNorm;
    double curvature = fmin(largestAtom > 0.0 ? largestAtom : a.lipschitz, a.lipschitz);
    int32_t iterations = 0;
    bool converged = false;
    double factor = 1.0;  // of the tolerance, for W's own test
    Check check = checkEveryAtom();
    bool checked = true;  // check describes the current x
    for (;;) {
      if (!checked) {
        check = checkEveryAtom();
        checked = true;
      }
      if (met(check.violation, check.gap, 1.0)) {
        converged = true;
        break;
      }
      if (iterations >= a.maxIter) break;

      // The subproblem on W: n atoms (local index b is atom W[b]), or every atom.
      const int64_t n = chooseWorkingSet(check);
      const bool everyAtom = n == m;
      const int32_t* W = ws.workingSet();
      const auto atomOf = [&](int64_t b) -> int64_t { return everyAtom ? b : W[b]; };
      const float* c = cFull;
      if (!everyAtom) {
        float* workingC = ws.workingC();
        for (int64_t b = lane; b < n; b += 32) workingC[b] = cFull[W[b]];
        c = workingC;
      }
      // x on W, from x over every atom, and x G from the check.
      momentum = FistaMomentum{};
      int64_t counts[3] = {0, 0, 0};
      {
        double* v = ws.values(xs);
        float* product = ws.products(xs);
        for (int64_t b = lane; b < n; b += 32) {
          v[b] = 0.0;
          product[b] = xG[atomOf(b)];
        }
        __syncwarp();
        for (int64_t e = lane; e < xCount; e += 32) {
          const int32_t j = xIndex[e];
          int64_t b = j;  // x's support is in W: its local index by binary search
          if (!everyAtom) {
            int64_t first = 0, last = n;
            while (first < last) {
              const int64_t middle = (first + last) / 2;
              if (W[middle] < j) {
                first = middle + 1;
              } else {
                last = middle;
              }
            }
            b = first;
          }
          v[b] = xValue[e];
          ws.nonzeros(xs)[e] = static_cast<int32_t>(b);
          ws.coef(xs)[e] = static_cast<float>(xValue[e]);
        }
        counts[xs] = xCount;
        __syncwarp();
      }
      FistaSums xSums = check.sums;

      // z's products with G on W: products[b] = sum over z's non-zeros e of coef[e] G[atom(e), W[b]].
      const auto combine = [&](int slot) {
        const int32_t* index = ws.nonzeros(slot);
        const float* coef = ws.coef(slot);
        float* product = ws.products(slot);
        for (int64_t b = lane; b < n; b += 32) {
          const int64_t column = atomOf(b);
          float sum = 0.0f;
          for (int64_t e = 0; e < counts[slot]; ++e) sum = fmaf(coef[e], a.gram[atomOf(index[e]) * m + column], sum);
          product[b] = sum;
        }
        __syncwarp();
      };

      const double& alpha = momentum.alpha;
      const double& beta = momentum.beta;
      double startGap = -1.0;
      int64_t steps = 0;
      bool solved = false;  // W met the (tightened) tolerance
      for (;;) {
        // z = prox(y), y = alpha x + beta p, and the optimality of x on W, in one pass.
        const double* x = ws.values(xs);
        const double* p = ws.values(ps);
        const float* xGw = ws.products(xs);
        const float* pG = ws.products(ps);
        double* z = ws.values(zs);
        const double invL = __drcp_rn(curvature);  // exactly 1 / curvature
        const double threshold = lambda * invL;
        double violation = 0.0, largest = 0.0, restart = 0.0;
        int64_t count = 0;
        for (int64_t b0 = 0; b0 < n; b0 += 32) {
          const int64_t b = b0 + lane;
          double zb = 0.0;
          if (b < n) {
            const double xb = x[b];
            const double g = static_cast<double>(xGw[b]) - c[b];
            double error;
            if (nonNegative) {
              error = xb > 0.0 ? fabs(g + lambda) : fmax(-g - lambda, 0.0);
            } else {
              error = xb != 0.0 ? fabs(g + (xb > 0.0 ? lambda : -lambda)) : fmax(fabs(g) - lambda, 0.0);
            }
            violation = fmax(violation, error);
            largest = fmax(largest, nonNegative ? -g : fabs(g));
            const double y = alpha * xb + beta * p[b];
            const double gy = alpha * xGw[b] + beta * pG[b] - c[b];
            const double w = y - gy * invL;
            zb = w > threshold ? w - threshold : (!nonNegative && w < -threshold ? w + threshold : 0.0);
            z[b] = zb;
            restart += (y - zb) * (zb - xb);
          }
          count = appendToList(zb != 0.0, static_cast<int32_t>(b), static_cast<float>(zb), ws.nonzeros(zs),
                               ws.coef(zs), count);
        }
        counts[zs] = count;
        __syncwarp();
        violation = warpAllMax(violation);
        largest = warpAllMax(largest);
        restart = warpAllSum(restart);
        const FistaGap gap = fistaGap(squaredNorm, lambda, xSums, largest);
        if (everyAtom) {
          // W is every atom: its test is the row's.
          check = Check{violation, largest, gap, xSums};
          if (met(violation, gap, 1.0)) {
            converged = true;
            break;
          }
        } else {
          if (startGap < 0.0) startGap = gap.gap;
          if (steps > 0) {
            solved = met(violation, gap, 0.5 * factor);
            if (solved || gap.gap <= kFistaSubproblemGapFraction * startGap) break;
          }
        }
        if (iterations >= a.maxIter) break;
        ++iterations;
        ++steps;

        combine(zs);
        // fista_cpu.cc's fistaStepSums: the curvature along z - y, and z's sums.
        const float* zG = ws.products(zs);
        double along = 0.0, length = 0.0, change = 0.0;
        FistaSums zSums;
        for (int64_t b = lane; b < n; b += 32) {
          const double zb = z[b], xb = x[b];
          const double delta = zb - (alpha * xb + beta * p[b]);
          along += delta * (static_cast<double>(zG[b]) - (alpha * xGw[b] + beta * pG[b]));
          length += delta * delta;
          zSums.dotC += zb * c[b];
          zSums.quadratic += zb * zG[b];
          zSums.l1 += fabs(zb);
          change += (zb - xb) * (0.5 * (static_cast<double>(zG[b]) + xGw[b]) - c[b]);
        }
        along = warpAllSum(along);
        length = warpAllSum(length);
        if (curvature < a.lipschitz && along > curvature * length) {
          // Backtracking: G's curvature along z - y must not exceed L. __drcp_rn, not a
          // division: a division's slow path takes registers.
          curvature = fmin(a.lipschitz, fmax(2.0 * curvature, along * __drcp_rn(length)));
          continue;
        }
        zSums.dotC = warpAllSum(zSums.dotC);
        zSums.quadratic = warpAllSum(zSums.quadratic);
        zSums.l1 = warpAllSum(zSums.l1);
        change = warpAllSum(change) + lambda * (zSums.l1 - xSums.l1);
        if (momentum.advance(change, restart > 0.0)) xSums = zSums;
      }

      // x back over every atom (local non-zeros are increasing, and so are W's atoms).
      xCount = counts[xs];
      for (int64_t e = lane; e < xCount; e += 32) {
        const int32_t b = ws.nonzeros(xs)[e];
        xIndex[e] = static_cast<int32_t>(atomOf(b));
        xValue[e] = ws.values(xs)[b];
      }
      __syncwarp();
      if (everyAtom) break;  // converged, or out of iterations: check describes x
      checked = false;
      if (solved) {
        check = checkEveryAtom();
        checked = true;
        if (!fistaTightenAfterCheck(met(check.violation, check.gap, 1.0), violatorsOutside, factor)) break;
      }
    }
    if (!checked) check = checkEveryAtom();

    // The codes, and the report from the explicit residual r = x - z D in double.
    float* codes = a.codes + row * m;
    for (int64_t j = lane; j < m; j += 32) codes[j] = 0.0f;
    __syncwarp();
    double residualSquared = 0.0, residualDotX = 0.0, l1 = 0.0;
    for (int64_t e = lane; e < xCount; e += 32) {
      codes[xIndex[e]] = static_cast<float>(xValue[e]);
      l1 += fabs(xValue[e]);
    }
    for (int64_t i = lane; i < d; i += 32) {
      double r = xRow[i];
      for (int64_t e = 0; e < xCount; ++e) r -= xValue[e] * a.dictionary[static_cast<int64_t>(xIndex[e]) * d + i];
      residualSquared += r * r;
      residualDotX += r * xRow[i];
    }
    residualSquared = warpAllSum(residualSquared);
    residualDotX = warpAllSum(residualDotX);
    l1 = warpAllSum(l1);
    if (lane == 0) {
      const double objective = 0.5 * residualSquared + lambda * l1;
      const double u = check.largest > lambda ? lambda / check.largest : 1.0;
      a.iterations[row] = iterations;
      a.objective[row] = objective;
      a.gap[row] = fmax(objective - (u * residualDotX - 0.5 * u * u * residualSquared), 0.0);
      a.kkt[row] = scale > 0.0 ? check.violation / scale : 0.0;
      a.converged[row] = converged ? 1 : 0;
      if (a.squaredError != nullptr) {
        a.squaredError[row] = residualSquared;
        a.l1[row] = l1;
      }
    }
    // The next row rewrites the workspace that lanes may still be reading above.
    __syncwarp();
  }
}

class CudaFista final : public FistaBackend {
 public:
  CudaFista(const FistaConfig& config, const float* dictionary);
  ~CudaFista() override;

  const FistaConfig& config() const override { return config_; }
  const char* device() const override { return "cuda"; }
  int64_t stepsTaken() const override { return learning_ ? learning_->steps() : 0; }
  size_t bytesHeld() const override;
  double lipschitz() override;
  void encode(const float* x, int64_t rows, const float* init, float* codes, FistaRowResults& results) override;
  FistaStepStats learnStep(const float* x, int64_t rows, const int32_t* rowIds) override;
  void forgetCodes() override {
    if (learning_) learning_->forgetCodes();
  }
  void getDictionary(float* out) const override {
    std::memcpy(out, hostDictionary_.data(), static_cast<size_t>(m_ * d_) * sizeof(float));
  }

 private:
  void prepare();
  // Rows per pass of `rows`, and the device buffers sized for it.
  int64_t reservePasses(int64_t rows, bool withInit);
  // Solves rows [row0, row0 + count) of x into codes_ [count, m], each from its row of init_
  // when withInit, and downloads their results to the results' entries row0... ; with
  // `withSums`, also rowSquaredError_ and rowL1_ from row0 on.
  void solvePass(const float* x, int64_t row0, int64_t count, bool withInit, FistaRowResults& results,
                 bool withSums);
  // init_'s first `count` rows from passStarts_.
  void uploadStarts(int64_t count);
  // codes_'s first `count` rows as rows row0... of batchCodes_ (its start[row0] set).
  void downloadCodeRows(int64_t row0, int64_t count);
  template <class T>
  void upload(T* device, const T* host, size_t count);
  template <class T>
  void download(T* host, const T* device, size_t count);

  FistaConfig config_;
  int64_t d_;
  int64_t m_;
  int device_;  // config.cudaDevice
  ThreadPool pool_;  // host work: the finite checks of inputs, learning's update of the atoms
  const cpu::Kernels& kernels_;
  cudaStream_t stream_ = nullptr;
  Buffer<float> hostDictionary_;
  bool prepared_ = false;  // G and L are those of hostDictionary_, and dictionary_ holds it
  double lipschitz_ = 1.0;
  Buffer<double> eigenvector_;  // the power iteration's last vector, its next start (as on the CPU)
  std::unique_ptr<cpu::DictionaryLearning> learning_;  // config.learning
  int64_t solvers_ = 1;  // warps of solveRowsKernel (whole blocks of them), set by reservePasses
  // learnStep's host side: a pass's warm starts and the batch's codes, both as CSR, and each
  // row's ||x - z D||^2 and ||z||_1.
  cpu::CodeRows passStarts_;
  cpu::CodeRows batchCodes_;
  Buffer<int64_t> passCodeStart_;
  Buffer<double> rowSquaredError_;
  Buffer<double> rowL1_;

  DeviceBuffer<float> dictionary_{"FISTA dictionary"};  // D [m, d]
  DeviceBuffer<float> gram_{"FISTA Gram matrix"};       // G [m, m]
  DeviceBuffer<float> smallGram_{"FISTA Gram matrix"};  // D^T D [d, d], when d < m
  DeviceBuffer<double> largestAtomSquaredNorm_{"FISTA Gram matrix"};  // [1]: max G_jj
  DeviceBuffer<double> inverseNorms_{"FISTA Gram matrix"};  // [m]: 1 / ||d_j||, 0 for a zero atom
  DeviceBuffer<float> x_{"FISTA input"};
  DeviceBuffer<float> c_{"FISTA x D^T"};
  DeviceBuffer<float> init_{"FISTA start codes"};
  DeviceBuffer<float> codes_{"FISTA codes"};
  DeviceBuffer<double> values_{"FISTA workspaces"};
  DeviceBuffer<float> products_{"FISTA workspaces"};
  DeviceBuffer<int32_t> nonzeros_{"FISTA workspaces"};
  DeviceBuffer<float> coef_{"FISTA workspaces"};
  DeviceBuffer<float> checkProducts_{"FISTA workspaces"};
  DeviceBuffer<float> workingC_{"FISTA workspaces"};
  DeviceBuffer<uint32_t> keys_{"FISTA workspaces"};
  DeviceBuffer<int32_t> atoms_{"FISTA workspaces"};
  DeviceBuffer<double> solution_{"FISTA workspaces"};
  DeviceBuffer<int32_t> iterations_{"FISTA row results"};
  DeviceBuffer<double> objective_{"FISTA row results"};
  DeviceBuffer<double> gap_{"FISTA row results"};
  DeviceBuffer<double> kkt_{"FISTA row results"};
  DeviceBuffer<uint8_t> converged_{"FISTA row results"};
  DeviceBuffer<double> squaredError_{"FISTA row results"};
  DeviceBuffer<double> l1_{"FISTA row results"};
  // learnStep's codes cross as CSR, a few bytes per non-zero rather than 4 per atom: the warm
  // starts up (scattered into init_ there), then the codes down (gathered from codes_).
  DeviceBuffer<int64_t> rowCount_{"FISTA codes (CSR)"};
  DeviceBuffer<int64_t> rowStart_{"FISTA codes (CSR)"};
  DeviceBuffer<int32_t> codeIndex_{"FISTA codes (CSR)"};
  DeviceBuffer<float> codeValue_{"FISTA codes (CSR)"};
  DeviceBuffer<unsigned char> scanTemp_{"FISTA codes (CSR)"};
};

CudaFista::CudaFista(const FistaConfig& config, const float* dictionary)
    : config_(config),
      d_(config.dIn),
      m_(config.dHidden),
      device_(config.cudaDevice),
      pool_(config.threads),
      kernels_(cpu::requireKernels(config.cpuKernels)) {
  if (m_ > std::numeric_limits<int32_t>::max()) throwRangeError("The CUDA backend supports up to 2^31 - 1 atoms");
  if (dictionary != nullptr) cpu::checkFiniteParallel(pool_, kernels_, dictionary, m_ * d_, d_, "dictionary.data");
  const long double m = static_cast<long double>(m_);
  const long double d = static_cast<long double>(d_);
  const std::string what = config_.learning ? "A FistaDictionary with dIn " + std::to_string(d_) + " and dHidden " +
                                                  std::to_string(m_) + " (dictionary, Gram matrix and statistics)"
                                            : "A FistaCoder with " + std::to_string(m_) + " atoms of dimension " +
                                                  std::to_string(d_) + " (dictionary and Gram matrix)";
  // The host holds the dictionary and, when learning, A and B; the GPU the dictionary and G.
  const long double hostBytes = 4.0L * (m * d + (config_.learning ? m * m + m * d : 0.0L));
  checkMemory(hostBytes >= 1.8e19L ? UINT64_MAX : static_cast<uint64_t>(hostBytes), what);
  DeviceScope scope(device_);
  const long double small = static_cast<long double>(std::min(m_, d_));
  checkFreeMemory(4.0L * (m * d + m * m + small * small), what);
  const size_t size = static_cast<size_t>(m_ * d_);
  hostDictionary_.resize(size);
  if (dictionary != nullptr) {
    std::memcpy(hostDictionary_.data(), dictionary, size * sizeof(float));
  } else {
    cpu::randomUnitRows(pool_, hostDictionary_.data(), m_, d_, config_.seed);
  }
  if (config_.learning) learning_ = std::make_unique<cpu::DictionaryLearning>(m_, d_, config_.seed);
  dictionary_.resize(size);
  gram_.resize(static_cast<size_t>(m_ * m_));
  largestAtomSquaredNorm_.resize(1);
  // Last: nothing after it throws, so the destructor (which releases it) will run.
  SAEKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

CudaFista::~CudaFista() {
  cudaSetDevice(device_);
  releaseStream(stream_);
}

size_t CudaFista::bytesHeld() const {
  return hostDictionary_.bytes() + eigenvector_.bytes() + dictionary_.bytes() + gram_.bytes() + smallGram_.bytes() +
         largestAtomSquaredNorm_.bytes() + x_.bytes() + c_.bytes() + init_.bytes() + codes_.bytes() + values_.bytes() +
         products_.bytes() + nonzeros_.bytes() + coef_.bytes() + checkProducts_.bytes() + workingC_.bytes() +
         keys_.bytes() + atoms_.bytes() + solution_.bytes() + inverseNorms_.bytes() + iterations_.bytes() +
         objective_.bytes() + gap_.bytes() + kkt_.bytes() + converged_.bytes() + squaredError_.bytes() + l1_.bytes() +
         rowCount_.bytes() + rowStart_.bytes() + codeIndex_.bytes() + codeValue_.bytes() + scanTemp_.bytes() +
         passStarts_.bytes() + batchCodes_.bytes() + passCodeStart_.bytes() + rowSquaredError_.bytes() +
         rowL1_.bytes() + (learning_ ? learning_->bytes() : 0);
}

template <class T>
void CudaFista::upload(T* device, const T* host, size_t count) {
  copyAndWait(device, host, count * sizeof(T), cudaMemcpyHostToDevice, stream_);
}

template <class T>
void CudaFista::download(T* host, const T* device, size_t count) {
  copyAndWait(host, device, count * sizeof(T), cudaMemcpyDeviceToHost, stream_);
}

// The dictionary to the GPU (the host's copy is the model's: learning updates it there), then
// G = D D^T and L.
void CudaFista::prepare() {
  if (prepared_) return;
  upload(dictionary_.data(), hostDictionary_.data(), static_cast<size_t>(m_ * d_));
  multiply(dictionary_.data(), false, dictionary_.data(), true, m_, d_, m_, gram_.data(), false, stream_);
  inverseNorms_.resize(static_cast<size_t>(m_));
  atomNormsKernel<<<1, kThreads, 0, stream_>>>(gram_.data(), m_, inverseNorms_.data(), largestAtomSquaredNorm_.data());
  SAEKIT_CUDA_LAUNCHED();
  const int64_t n = std::min(m_, d_);
  const float* small = gram_.data();
  if (d_ < m_) {
    smallGram_.resize(static_cast<size_t>(d_ * d_));
    multiply(dictionary_.data(), true, dictionary_.data(), false, d_, m_, d_, smallGram_.data(), false, stream_);
    small = smallGram_.data();
  }
  Buffer<float> readBack(static_cast<size_t>(n * n));
  download(readBack.data(), small, static_cast<size_t>(n * n));
  Buffer<double> h(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n * n; ++i) h[i] = readBack[i];
  // The CPU backend's power iteration, on the smaller Gram matrix read back in double, from the
  // last estimate after the first time (learning changes the dictionary a little per step).
  if (eigenvector_.size() != static_cast<size_t>(n)) {
    eigenvector_.resize(static_cast<size_t>(n));
    powerIterationStart(eigenvector_.data(), n);
  }
  lipschitz_ = lipschitzFromEigenvalue(largestEigenvalue(h.data(), n, eigenvector_.data()));
  prepared_ = true;
}

double CudaFista::lipschitz() {
  DeviceScope scope(device_);
  prepare();
  return lipschitz_;
}

int64_t CudaFista::reservePasses(int64_t rows, bool withInit) {
  const int64_t perPass =
      config_.cudaPassRows > 0 ? config_.cudaPassRows
                               : std::max<int64_t>(1, std::min(kPassRows, kDenseChunkFloats / std::max(d_, m_)));
  const int64_t passRows = std::min(perPass, rows);
  const int64_t blocks = std::max<int64_t>(
      1, std::min({ceilDiv(passRows, int64_t{kWarps}), kMaxSolverBlocks,
                   kWorkspaceBytes / (kWarps * static_cast<int64_t>(workspaceBytesPerSolver(m_)))}));
  solvers_ = blocks * kWarps;
  x_.resize(static_cast<size_t>(passRows * d_));
  c_.resize(static_cast<size_t>(passRows * m_));
  codes_.resize(static_cast<size_t>(passRows * m_));
  if (withInit) init_.resize(static_cast<size_t>(passRows * m_));
  const size_t perAtom = static_cast<size_t>(solvers_ * m_);
  values_.resize(3 * perAtom);
  products_.resize(3 * perAtom);
  nonzeros_.resize(3 * perAtom);
  coef_.resize(3 * perAtom);
  checkProducts_.resize(perAtom);
  workingC_.resize(perAtom);
  keys_.resize(perAtom);
  atoms_.resize(2 * perAtom);
  solution_.resize(perAtom);
  iterations_.resize(static_cast<size_t>(passRows));
  objective_.resize(static_cast<size_t>(passRows));
  gap_.resize(static_cast<size_t>(passRows));
  kkt_.resize(static_cast<size_t>(passRows));
  converged_.resize(static_cast<size_t>(passRows));
  if (config_.learning) {
    squaredError_.resize(static_cast<size_t>(passRows));
    l1_.resize(static_cast<size_t>(passRows));
  }
  return perPass;
}

void CudaFista::solvePass(const float* x, int64_t row0, int64_t count, bool withInit, FistaRowResults& results,
                          bool withSums) {
  upload(x_.data(), x + row0 * d_, static_cast<size_t>(count * d_));
  multiply(x_.data(), false, dictionary_.data(), true, count, d_, m_, c_.data(), false, stream_);
  SolveArgs args{gram_.data(), c_.data(), x_.data(), withInit ? init_.data() : nullptr,
                 dictionary_.data(), inverseNorms_.data(), count, m_, d_, config_.lambda, lipschitz_, config_.tol,
                 config_.gapTol, largestAtomSquaredNorm_.data(), config_.maxIter, config_.nonNegative,
                 values_.data(), products_.data(), nonzeros_.data(), coef_.data(), checkProducts_.data(),
                 workingC_.data(), keys_.data(), atoms_.data(), solution_.data(), codes_.data(), iterations_.data(),
                 objective_.data(), gap_.data(), kkt_.data(), converged_.data(),
                 withSums ? squaredError_.data() : nullptr, withSums ? l1_.data() : nullptr};
  const int64_t solvers = std::min(count, solvers_);
  solveRowsKernel<<<static_cast<unsigned>(ceilDiv(solvers, int64_t{kWarps})), kThreads, 0, stream_>>>(args, solvers);
  SAEKIT_CUDA_LAUNCHED();
  download(results.iterations.data() + row0, iterations_.data(), static_cast<size_t>(count));
  download(results.objective.data() + row0, objective_.data(), static_cast<size_t>(count));
  download(results.gap.data() + row0, gap_.data(), static_cast<size_t>(count));
  download(results.kkt.data() + row0, kkt_.data(), static_cast<size_t>(count));
  download(results.converged.data() + row0, converged_.data(), static_cast<size_t>(count));
  if (withSums) {
    download(rowSquaredError_.data() + row0, squaredError_.data(), static_cast<size_t>(count));
    download(rowL1_.data() + row0, l1_.data(), static_cast<size_t>(count));
  }
}

void CudaFista::encode(const float* x, int64_t rows, const float* init, float* codes, FistaRowResults& results) {
  cpu::checkFiniteParallel(pool_, kernels_, x, rows * d_, d_, "x.data");
  if (init != nullptr) cpu::checkFiniteParallel(pool_, kernels_, init, rows * m_, m_, "options.init.data");
  results.resize(rows);
  if (rows <= 0) return;
  DeviceScope scope(device_);
  prepare();
  const int64_t perPass = reservePasses(rows, init != nullptr);
  for (int64_t row0 = 0; row0 < rows; row0 += perPass) {
    const int64_t count = std::min(perPass, rows - row0);
    if (init != nullptr) upload(init_.data(), init + row0 * m_, static_cast<size_t>(count * m_));
    solvePass(x, row0, count, init != nullptr, results, false);
    download(codes + row0 * m_, codes_.data(), static_cast<size_t>(count * m_));
  }
}

void CudaFista::uploadStarts(int64_t count) {
  const int64_t nonzeros = passStarts_.nonzeros(count);
  rowStart_.resize(static_cast<size_t>(count + 1));
  codeIndex_.resize(static_cast<size_t>(std::max<int64_t>(nonzeros, 1)));
  codeValue_.resize(static_cast<size_t>(std::max<int64_t>(nonzeros, 1)));
  upload(rowStart_.data(), passStarts_.start.data(), static_cast<size_t>(count + 1));
  upload(codeIndex_.data(), passStarts_.index.data(), static_cast<size_t>(nonzeros));
  upload(codeValue_.data(), passStarts_.value.data(), static_cast<size_t>(nonzeros));
  SAEKIT_CUDA_CHECK(cudaMemsetAsync(init_.data(), 0, static_cast<size_t>(count * m_) * sizeof(float), stream_));
  scatterDense(rowStart_.data(), codeIndex_.data(), codeValue_.data(), count, m_, init_.data(), stream_);
}

void CudaFista::downloadCodeRows(int64_t row0, int64_t count) {
  rowCount_.resize(static_cast<size_t>(count + 1));
  rowStart_.resize(static_cast<size_t>(count + 1));
  denseRowCounts(codes_.data(), count, m_, rowCount_.data(), stream_);
  exclusiveSum(rowCount_.data(), rowStart_.data(), count + 1, scanTemp_, stream_);
  passCodeStart_.resize(static_cast<size_t>(count + 1));
  download(passCodeStart_.data(), rowStart_.data(), static_cast<size_t>(count + 1));
  const int64_t nonzeros = passCodeStart_[count];
  codeIndex_.resize(static_cast<size_t>(std::max<int64_t>(nonzeros, 1)));
  codeValue_.resize(static_cast<size_t>(std::max<int64_t>(nonzeros, 1)));
  gatherDense(codes_.data(), count, m_, rowStart_.data(), codeIndex_.data(), codeValue_.data(), nullptr, stream_);
  const int64_t base = batchCodes_.start[row0];
  batchCodes_.index.resize(static_cast<size_t>(base + nonzeros));
  batchCodes_.value.resize(static_cast<size_t>(base + nonzeros));
  download(batchCodes_.index.data() + base, codeIndex_.data(), static_cast<size_t>(nonzeros));
  download(batchCodes_.value.data() + base, codeValue_.data(), static_cast<size_t>(nonzeros));
  for (int64_t r = 1; r <= count; ++r) batchCodes_.start[row0 + r] = base + passCodeStart_[r];
}

FistaStepStats CudaFista::learnStep(const float* x, int64_t rows, const int32_t* rowIds) {
  if (!learning_) throwError("ERR_NOT_LEARNING", "This FISTA model codes with a fixed dictionary and cannot learn");
  cpu::checkFiniteParallel(pool_, kernels_, x, rows * d_, d_, "batch.data");
  learning_->checkRowIds(rowIds, rows);
  DeviceScope scope(device_);
  prepare();

  // Codes for the batch, a pass at a time, each row starting from the codes it got last time.
  FistaRowResults results;
  results.resize(rows);
  rowSquaredError_.resize(static_cast<size_t>(rows));
  rowL1_.resize(static_cast<size_t>(rows));
  const int64_t perPass = reservePasses(rows, rowIds != nullptr);
  batchCodes_.start.resize(static_cast<size_t>(rows + 1));
  batchCodes_.start[0] = 0;
  for (int64_t row0 = 0; row0 < rows; row0 += perPass) {
    const int64_t count = std::min(perPass, rows - row0);
    if (rowIds != nullptr) {
      passStarts_.start.resize(static_cast<size_t>(count + 1));
      int64_t* start = passStarts_.start.data();
      start[0] = 0;
      for (int64_t r = 0; r < count; ++r) {
        passStarts_.index.resize(static_cast<size_t>(start[r] + m_));
        passStarts_.value.resize(static_cast<size_t>(start[r] + m_));
        start[r + 1] = start[r] + learning_->warmStart(rowIds[row0 + r], passStarts_.index.data() + start[r],
                                                       passStarts_.value.data() + start[r]);
      }
      uploadStarts(count);
    }
    solvePass(x, row0, count, rowIds != nullptr, results, true);
    downloadCodeRows(row0, count);
  }
  cpu::StepTotals totals;
  for (int64_t r = 0; r < rows; ++r) {
    totals.add(results.objective[r], rowSquaredError_[r], rowL1_[r], results.iterations[r]);
  }
  FistaStepStats stats = totals.finish(rows, d_, batchCodes_.nonzeros(rows));
  // From here the host's dictionary changes: the GPU's copy, G and L are stale until the next
  // prepare(), even if the update throws part-way.
  prepared_ = false;
  learning_->keepCodes(rowIds, rows, batchCodes_);
  stats.resampled = learning_->update(pool_, kernels_, x, rows, batchCodes_, hostDictionary_.data());
  return stats;
}

}  // namespace
}  // namespace cuda

std::unique_ptr<FistaBackend> createCudaFista(const FistaConfig& config, const float* dictionary) {
  cuda::requireCuda(config.learning ? "a FistaDictionary" : "a FistaCoder", config.cudaDevice);
  return std::make_unique<cuda::CudaFista>(config, dictionary);
}

}  // namespace saekit
