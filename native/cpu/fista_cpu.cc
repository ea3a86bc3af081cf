// FISTA lasso coding and online dictionary learning on the CPU (the algorithms are described
// in core/fista.h).
//
// Where the time goes, per row with m atoms, d dimensions and s non-zeros in the codes:
// c = x D^T is one blocked GEMM over all rows (2 m d flops per row, once). The iterations run
// on a working set of w atoms (about 2 s): each is one sparse-times-dense product z G on a
// compact copy of the rows of G in use (s w, the `combineRows` kernel) plus one O(w) pass (the
// `fistaStep` kernel); no iteration touches D. Each working set ends with one check over every
// atom (s m, and O(m) to choose the next set). The solve of each row block runs in the GEMM's
// epilogue, on the thread that computed that block of c, while it is in cache.
//
// Precision: G, c and the products z G are float (as the inputs are); the iterates, the
// objective and the step arithmetic are double, so that the iteration never stalls on the
// rounding of z itself and the stopping test can go well below float's resolution of z.
//
// Rows are independent and every reduction runs in row or atom order, so results do not
// depend on the number of threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../core/ceil_div.h"
#include "../core/checks.h"
#include "../core/error.h"
#include "../core/fista.h"
#include "../core/fista_lipschitz.h"
#include "../core/fista_momentum.h"
#include "../core/fista_working_set.h"
#include "../core/memory.h"
#include "../core/thread_pool.h"
#include "fista_learning.h"
#include "gemm.h"
#include "kernels.h"
#include "model_support.h"

namespace saekit {

size_t fistaStateBytes(const FistaConfig& config) {
  const long double m = static_cast<long double>(config.dHidden);
  const long double d = static_cast<long double>(config.dIn);
  const long double small = std::min(m, d);
  // The dictionary, its packed copy and G in float; the power iteration's matrix in double.
  long double bytes = 4.0L * (2.0L * m * d + m * m) + 8.0L * small * small;
  if (config.learning) bytes += 4.0L * (m * m + m * d);  // A and B
  if (bytes >= static_cast<long double>(std::numeric_limits<size_t>::max() / 2)) {
    return std::numeric_limits<size_t>::max() / 2;
  }
  return static_cast<size_t>(bytes);
}

namespace cpu {
namespace {

// L is the power iteration's estimate times (1 + margin): the estimate approaches the largest
// eigenvalue from below, and float rounding of G moves it by about 1e-7.
constexpr int64_t kMaxRowsPerBlock = 48;   // rows per GEMM block, and per solve task
// Choosing a working set samples every kSampleStride-th atom for a threshold (see solveRow).
constexpr int64_t kSampleStride = 8;


// Per-thread scratch for solving one row at a time. The iteration needs three iterates (the
// kept one x, the one y extrapolates from, p, and the new z); they rotate through three slots,
// indexed by the working set's local atom indices.
// An atom and how near it is to violating its condition (smaller: nearer), for choosing W.
struct RankedAtom {
  double priority;
  int32_t atom;
};

struct RowWorkspace {
  Buffer<double> values[3];     // [m] each
  Buffer<float> products[3];    // their products with G
  Buffer<int32_t> nonzeros[3];  // their non-zeros, increasing
  int64_t counts[3] = {0, 0, 0};
  Buffer<float> coef[3];        // the non-zero values in float, for combineRows
  Buffer<int32_t> initIndex;    // the start point, as a sparse row
  Buffer<float> initValue;
  int64_t initCount = 0;
  Buffer<double> residual;      // [d]
  // The working set: local atom a is atom atoms[a] (increasing). Its c, and the rows of its
  // compact G, made when an iterate first uses them. The previous working set's are kept, so
  // that rows already made are carried over, not gathered from G again.
  Buffer<int32_t> atoms, previousAtoms;
  Buffer<float> compactC;
  Buffer<float> compactGram, previousGram;
  Buffer<uint8_t> filled, previousFilled;
  Buffer<int32_t> previousLocal;  // for each atom of W, its local index in the previous W or -1
  // W's local atoms that the previous W held too (with their local index there), and the rest
  // (with their global index): a row carried over copies the first and gathers the second.
  Buffer<int32_t> carriedLocal, carriedFrom, freshLocal, freshAtom;
  int64_t carriedCount = 0, freshCount = 0;
  Buffer<RankedAtom> ranked;
  Buffer<double> priority, sample;
  Buffer<int32_t> candidates;
  // The check over every atom: x's non-zeros in float, and x G.
  Buffer<float> fullProducts, fullCoef;
  Buffer<float> zeros;  // [m], all 0
  // x over every atom between subproblems, and the solution: global indices, increasing.
  Buffer<int32_t> solutionIndex;
  Buffer<double> solutionValue;
  int64_t solutionCount = 0;

  void allocate(int64_t m, int64_t d) {
    const size_t n = static_cast<size_t>(m);
    for (int s = 0; s < 3; ++s) {
      values[s].resize(n);
      products[s].resize(n);
      nonzeros[s].resize(n);
      coef[s].resize(n);
    }
    for (Buffer<int32_t>* b : {&initIndex, &atoms, &previousAtoms, &previousLocal, &carriedLocal, &carriedFrom, &freshLocal, &freshAtom,
                               &candidates, &solutionIndex}) {
      b->resize(n);
    }
    for (Buffer<float>* b : {&initValue, &compactC, &fullProducts, &fullCoef}) b->resize(n);
    solutionValue.resize(n);
    if (zeros.size() != n) {
      zeros.resize(n);
      zeros.zero();
    }
    ranked.resize(n);
    priority.resize(n);
    sample.resize(n);
    const size_t compact = static_cast<size_t>(std::min(m / 2, kFistaMaxWorkingSet));
    compactGram.resize(compact * compact);
    previousGram.resize(compact * compact);
    filled.resize(compact);
    previousFilled.resize(compact);
    residual.resize(static_cast<size_t>(d));
  }
  size_t bytes() const {
    size_t total = initIndex.bytes() + initValue.bytes() + residual.bytes() + atoms.bytes() + previousAtoms.bytes() +
                   previousLocal.bytes() + carriedLocal.bytes() + carriedFrom.bytes() + freshLocal.bytes() + freshAtom.bytes() +
                   compactC.bytes() + compactGram.bytes() + previousGram.bytes() + filled.bytes() +
                   previousFilled.bytes() + ranked.bytes() + priority.bytes() + sample.bytes() + candidates.bytes() +
                   fullProducts.bytes() + fullCoef.bytes() + zeros.bytes() + solutionIndex.bytes() + solutionValue.bytes();
    for (int s = 0; s < 3; ++s) total += values[s].bytes() + products[s].bytes() + nonzeros[s].bytes() + coef[s].bytes();
    return total;
  }
  int64_t count() const { return solutionCount; }
  int32_t index(int64_t e) const { return solutionIndex[e]; }
  double value(int64_t e) const { return solutionValue[e]; }
};

struct RowOutcome {
  int32_t iterations = 0;
  double objective = 0;
  double gap = 0;
  double kkt = 0;
  bool converged = false;
  double squaredError = 0;  // ||x - z D||^2
  double l1 = 0;
  int64_t nnz = 0;
};

class CpuFista final : public FistaBackend {
 public:
  CpuFista(const FistaConfig& config, const float* dictionary);

  const FistaConfig& config() const override { return config_; }
  const char* device() const override { return "cpu"; }
  int64_t stepsTaken() const override { return learning_ ? learning_->steps() : 0; }
  size_t bytesHeld() const override;
  double lipschitz() override;
  void encode(const float* x, int64_t rows, const float* init, float* codes, FistaRowResults& results) override;
  FistaStepStats learnStep(const float* x, int64_t rows, const int32_t* rowIds) override;
  void forgetCodes() override;
  void getDictionary(float* out) const override;

 private:
  struct BlockCodes {
    Buffer<int32_t> indices;
    Buffer<float> values;
    Buffer<int64_t> rowEnd;  // end offset of each row of the block
  };

  void checkFinite(const float* values, int64_t count, int64_t cols, const char* name);
  void prepare();
  double largestEigenvalue();
  RowBlocking solveBlocking(int64_t rows) const;
  template <class Init, class Emit>
  void solveRows(const float* x, int64_t rows, const RowBlocking& blocking, Init&& initFor, Emit&& emit);
  RowOutcome solveRow(const float* xRow, const float* c, RowWorkspace& ws) const;
  void gatherCodes(const RowBlocking& blocking, int64_t rows);

  FistaConfig config_;
  int64_t d_;
  int64_t m_;
  ThreadPool pool_;
  const Kernels& kernels_;
  Buffer<float> dictionary_;  // [m, d]

  bool prepared_ = false;
  PackedB packed_;
  GemmScratch gemmScratch_;
  Buffer<float> gram_;           // G [m, m]
  Buffer<double> smallGram_;     // D^T D [d, d] when d < m, else G: the same non-zero eigenvalues
  Buffer<double> eigenvector_;   // the power iteration's last vector, its next start
  Buffer<double> atomInverseNorms_;  // 1 / ||d_j|| (0 for a zero atom), for choosing working sets
  double largestAtomSquaredNorm_ = 0;  // max ||d_j||^2: L's start on a working set
  double lipschitz_ = 0;
  std::vector<RowWorkspace> workspaces_;  // per thread

  // Dictionary learning (config.learning).
  std::unique_ptr<DictionaryLearning> learning_;
  std::vector<BlockCodes> blocks_;
  std::vector<RowOutcome> outcomes_;
  CodeRows batchCodes_;
};

CpuFista::CpuFista(const FistaConfig& config, const float* dictionary)
    : config_(config), d_(config.dIn), m_(config.dHidden), pool_(config.threads), kernels_(requireKernels(config.cpuKernels)) {
  const std::string what = config_.learning
                               ? "A FistaDictionary with dIn " + std::to_string(d_) + " and dHidden " + std::to_string(m_) +
                                     " (dictionary, Gram matrix and statistics)"
                               : "A FistaCoder with " + std::to_string(m_) + " atoms of dimension " + std::to_string(d_) +
                                     " (dictionary and Gram matrix)";
  checkMemory(fistaStateBytes(config_), what);
  dictionary_.resize(static_cast<size_t>(m_ * d_));
  if (dictionary != nullptr) {
    checkFinite(dictionary, m_ * d_, d_, "dictionary.data");
    std::memcpy(dictionary_.data(), dictionary, static_cast<size_t>(m_ * d_) * sizeof(float));
  } else {
    randomUnitRows(pool_, dictionary_.data(), m_, d_, config_.seed);
  }
  gram_.resize(static_cast<size_t>(m_ * m_));
  if (config_.learning) learning_ = std::make_unique<DictionaryLearning>(m_, d_, config_.seed);
}

size_t CpuFista::bytesHeld() const {
  size_t total = dictionary_.bytes() + packed_.data.bytes() + gemmScratch_.bytes() + gram_.bytes() +
                 smallGram_.bytes() + eigenvector_.bytes() + atomInverseNorms_.bytes() + batchCodes_.bytes();
  if (learning_) total += learning_->bytes();
  for (const auto& ws : workspaces_) total += ws.bytes();
  for (const auto& block : blocks_) total += block.indices.bytes() + block.values.bytes() + block.rowEnd.bytes();
  total += outcomes_.capacity() * sizeof(RowOutcome);
  return total;
}

void CpuFista::checkFinite(const float* values, int64_t count, int64_t cols, const char* name) {
  checkFiniteParallel(pool_, kernels_, values, count, cols, name);
}

// G = D D^T, and L from the smaller of D D^T and D^T D (they share their non-zero
// eigenvalues; the power iteration on the smaller one costs min(m, d)^2 per iteration).
void CpuFista::prepare() {
  if (prepared_) return;
  const float* dict = dictionary_.data();
  const auto nothing = [](int, int64_t, int64_t, int64_t, float*, int64_t) {};
  const int64_t n = std::min(m_, d_);
  smallGram_.resize(static_cast<size_t>(n * n));
  if (d_ < m_) {
    Buffer<float> product(static_cast<size_t>(d_ * d_));
    packB(kernels_, pool_, dict, d_, Layout::RowsAreK, d_, m_, packed_);
    gemm(kernels_, pool_, gemmScratch_, OperandA{dict, d_, true}, d_, packed_, product.data(), d_,
         chooseRowBlocking(d_, pool_.size(), kernels_.mr), nothing);
    for (int64_t i = 0; i < d_ * d_; ++i) smallGram_[i] = product[i];
  }
  // Packed for C = A D^T: the Gram matrix now, c = x D^T in every solve.
  packB(kernels_, pool_, dict, d_, Layout::RowsAreColumnsOfC, m_, d_, packed_);
  gemm(kernels_, pool_, gemmScratch_, OperandA{dict, d_}, m_, packed_, gram_.data(), m_,
       chooseRowBlocking(m_, pool_.size(), kernels_.mr), nothing);
  if (m_ <= d_) {
    for (int64_t i = 0; i < m_ * m_; ++i) smallGram_[i] = gram_[i];
  }
  atomInverseNorms_.resize(static_cast<size_t>(m_));
  largestAtomSquaredNorm_ = 0.0;
  for (int64_t j = 0; j < m_; ++j) {
    const double squared = std::max(static_cast<double>(gram_[j * m_ + j]), 0.0);
    atomInverseNorms_[j] = squared > 0.0 ? 1.0 / std::sqrt(squared) : 0.0;
    largestAtomSquaredNorm_ = std::max(largestAtomSquaredNorm_, squared);
  }
  const double largest = largestEigenvalue();
  lipschitz_ = lipschitzFromEigenvalue(largest);
  prepared_ = true;
}

double CpuFista::largestEigenvalue() {
  const int64_t n = std::min(m_, d_);
  if (eigenvector_.size() != static_cast<size_t>(n)) {
    eigenvector_.resize(static_cast<size_t>(n));
    powerIterationStart(eigenvector_.data(), n);
  }
  return saekit::largestEigenvalue(smallGram_.data(), n, eigenvector_.data());
}

double CpuFista::lipschitz() {
  prepare();
  return lipschitz_;
}

RowBlocking CpuFista::solveBlocking(int64_t rows) const {
  // Small blocks: rows differ in how many iterations they need, and the pool hands blocks out
  // dynamically, so several blocks per thread keep both cores busy to the end.
  const int64_t mr = kernels_.mr;
  const int64_t target = std::clamp<int64_t>(ceilDiv(rows, static_cast<int64_t>(pool_.size()) * 8), 1, kMaxRowsPerBlock);
  const int64_t size = ceilDiv(target, mr) * mr;
  return {size, ceilDiv(rows, size)};
}

template <class Init, class Emit>
void CpuFista::solveRows(const float* x, int64_t rows, const RowBlocking& blocking, Init&& initFor, Emit&& emit) {
  if (rows == 0) return;
  if (workspaces_.size() < static_cast<size_t>(pool_.size())) workspaces_.resize(static_cast<size_t>(pool_.size()));
  for (auto& ws : workspaces_) ws.allocate(m_, d_);
  gemm(kernels_, pool_, gemmScratch_, OperandA{x, d_}, rows, packed_, nullptr, 0, blocking,
       [&](int thread, int64_t block, int64_t row0, int64_t blockRows, float* c, int64_t ldc) {
         RowWorkspace& ws = workspaces_[thread];
         for (int64_t r = 0; r < blockRows; ++r) {
           const int64_t row = row0 + r;
           initFor(row, ws);
           const RowOutcome outcome = solveRow(x + row * d_, c + r * ldc, ws);
           emit(row, block, ws, outcome);
         }
       });
}

// Monotone FISTA (Beck & Teboulle 2009b, "Fast gradient-based algorithms for constrained total
// variation image denoising and deblurring", MFISTA) for one row, on working sets:
//   z_k = prox(y_k - (y_k G - c) / L)
//   x_k = z_k if P(z_k) <= P(x_{k-1}), else x_{k-1}
//   y_{k+1} = x_k + (t_k / t_{k+1}) (z_k - x_k) + ((t_k - 1) / t_{k+1}) (x_k - x_{k-1})
// with the gradient restart of O'Donoghue & Candes (2015, "Adaptive restart for accelerated
// gradient schemes"): when (y_k - z_k) . (z_k - x_{k-1}) > 0 the momentum points against the
// step just taken, so t restarts at 1 and y_{k+1} = x_k. Which iterate is kept is decided by P
// alone, so P never increases.
//
// The iteration runs on a working set W of atoms, the others held at zero (Massias, Gramfort &
// Salmon 2018, "Celer"; Johnson & Guestrin 2015, "Blitz"): W is x's support plus the atoms
// nearest to violating their condition, in the Gap Safe order (lambda - u |g_j|) / ||d_j||, twice
// the support in all (at least kFistaInitialWorkingSet). Each iteration then costs nnz(y) |W| on a
// compact copy of G's rows, not nnz(y) m, and the step 1/L follows the curvature of G on W, not
// on every atom: L is found by backtracking (Beck & Teboulle 2009a, FISTA with backtracking),
// starting from the largest ||d_j||^2 and raised whenever a step fails the sufficient-decrease
// test (z - y) G (z - y) <= L ||z - y||^2, never past the L of every atom, for which the test
// holds. For w random unit atoms of dimension d that L is about (1 + sqrt(w / d))^2: 3 for the
// ~70 atoms of W at 35 non-zeros in dimension 128, against 15 for all 1024 atoms. A subproblem stops when its duality gap has fallen to
// kFistaSubproblemGapFraction of where it started, or when it meets the row's tolerance; then the
// conditions are checked over every atom from x G (one sparse product with G), which alone
// decides that a row has converged, and W is chosen again. x carries over from one subproblem
// to the next, so P never increases across them either.
//
// y is never stored: it is alpha x_k + beta p with p = x_{k-1} (z_k kept) or z_k (rejected),
// and y G the same combination of x G and p G, both formed inside the proximal step.
//
// P(z) <= P(x) is decided by P(z) - P(x) = (z - x) . ((z G + x G) / 2 - c) + lambda (|z|_1 -
// |x|_1), an identity for symmetric G (the GEMM's G is symmetric bit for bit: entries (i, j) and
// (j, i) sum the same products in the same order). Its rounding error scales with z - x, where P(z) and P(x)
// formed apart would each carry float rounding of order ||x||^2 and the comparison would
// stall long before the iterates stop improving.
RowOutcome CpuFista::solveRow(const float* xRow, const float* cFull, RowWorkspace& ws) const {
  const int64_t m = m_;
  const double lambda = config_.lambda;
  const bool nonNegative = config_.nonNegative;
  const float* gram = gram_.data();

  double squaredNorm = 0.0;
  for (int64_t i = 0; i < d_; ++i) squaredNorm += static_cast<double>(xRow[i]) * xRow[i];
  // ||c||_inf, the largest gradient at z = 0 (where z G is all zeros).
  const double cInf = kernels_.largestGradient(ws.zeros.data(), cFull, m, false);
  const double scale = std::max(lambda, cInf);
  const double stopAt = config_.tol * scale;
  const double gapTol = config_.gapTol;

  using Gap = FistaGap;
  const auto gapAt = [&](const FistaSums& s, double largest) { return fistaGap(squaredNorm, lambda, s, largest); };
  const auto met = [&](double violation, const Gap& gap, double factor) {
    return fistaMet(violation, gap, factor, stopAt, gapTol);
  };

  // x over every atom (global indices, increasing): the start point, projected onto z >= 0
  // when nonNegative, then each subproblem's solution.
  int32_t* xIndex = ws.solutionIndex.data();
  double* xValue = ws.solutionValue.data();
  int64_t& xCount = ws.solutionCount;
  xCount = 0;
  for (int64_t e = 0; e < ws.initCount; ++e) {
    const float value = nonNegative ? std::max(ws.initValue[e], 0.0f) : ws.initValue[e];
    if (value == 0.0f) continue;
    xIndex[xCount] = ws.initIndex[e];
    xValue[xCount++] = value;
  }

  // The conditions over every atom, from x G in float (left in fullProducts): the stopping test.
  struct Check {
    double violation, largest;
    Gap gap;
    FistaSums sums;  // x's, which a subproblem on x starts from
  };
  const auto checkEveryAtom = [&]() {
    FistaSums s;
    for (int64_t e = 0; e < xCount; ++e) {
      const int32_t j = xIndex[e];
      ws.fullCoef[e] = static_cast<float>(xValue[e]);
      s.dotC += xValue[e] * cFull[j];
      s.l1 += std::fabs(xValue[e]);
    }
    // If this check ends the row, the report reads x's atoms from the dictionary next: fetch
    // them while the product reads G.
    for (int64_t e = 0; e < xCount; ++e) {
      const float* atom = dictionary_.data() + static_cast<int64_t>(xIndex[e]) * d_;
      for (int64_t i = 0; i < d_; i += 16) __builtin_prefetch(atom + i);
    }
    kernels_.combineRows(gram, m, xIndex, ws.fullCoef.data(), xCount, ws.fullProducts.data(), m);
    // The violation over every atom: a zero code's is at most largest - lambda, and x's own
    // atoms' (never below that bound) are computed one by one, not all m in a probe step.
    const float* xG = ws.fullProducts.data();
    const double largest = kernels_.largestGradient(xG, cFull, m, nonNegative);
    double violation = std::max(largest - lambda, 0.0);
    for (int64_t e = 0; e < xCount; ++e) {
      const int32_t j = xIndex[e];
      s.quadratic += xValue[e] * xG[j];
      const double g = static_cast<double>(xG[j]) - cFull[j];
      violation = std::max(violation, std::fabs(g + (xValue[e] > 0.0 ? lambda : -lambda)));
    }
    return Check{violation, largest, gapAt(s, largest), s};
  };

  // Atoms outside x's support that violate their condition, by the check just made: all
  // violators less those in the support.
  const auto violatorsOutside = [&]() {
    const float* xG = ws.fullProducts.data();
    const auto violates = [&](int64_t j) {
      const double g = static_cast<double>(xG[j]) - cFull[j];
      return (nonNegative ? -g : std::fabs(g)) > lambda;
    };
    int64_t count = 0;
    for (int64_t j = 0; j < m; ++j) count += violates(j);
    for (int64_t e = 0; e < xCount; ++e) count -= violates(xIndex[e]);
    return count;
  };

  // The next W (in ws.atoms) from the check just made; its size, or m for every atom.
  const auto chooseWorkingSet = [&](const Check& check) {
    const int64_t size = fistaWorkingSetSize(xCount);
    if (fistaWorkingSetIsEveryAtom(size, m)) return m;
    const int64_t extra = size - xCount;
    // Each atom's priority; the support's (and zero atoms') are infinite: never chosen.
    double* priority = ws.priority.data();
    const float* xG = ws.fullProducts.data();
    const double u = check.gap.scale;
    kernels_.workingSetPriorities(xG, cFull, atomInverseNorms_.data(), u, lambda, nonNegative, priority, m);
    for (int64_t e = 0; e < xCount; ++e) priority[xIndex[e]] = std::numeric_limits<double>::infinity();
    // A threshold that about 1.5 extra atoms meet, from every kSampleStride-th atom's priority,
    // so that the exact selection below sorts a few atoms, not m. Every atom at or below it
    // is kept; if fewer than `extra` are, the threshold is dropped.
    double threshold = std::numeric_limits<double>::infinity();
    const int64_t samples = m / kSampleStride;
    const int64_t rank = (3 * extra) / (2 * kSampleStride) + 2;
    if (rank < samples) {
      double* sample = ws.sample.data();
      for (int64_t i = 0; i < samples; ++i) sample[i] = priority[i * kSampleStride];
      std::nth_element(sample, sample + rank, sample + samples);
      threshold = sample[rank];
    }
    RankedAtom* ranked = ws.ranked.data();
    int64_t count = 0;
    for (int pass = 0; pass < 2 && count < extra; ++pass) {
      // Finite, so that the support's infinite priorities never pass.
      const double limit = std::min(threshold, std::numeric_limits<double>::max());
      int32_t* chosen = ws.candidates.data();
      count = kernels_.indicesAtOrBelow(priority, limit, chosen, m);
      for (int64_t e = 0; e < count; ++e) ranked[e] = RankedAtom{priority[chosen[e]], chosen[e]};
      threshold = std::numeric_limits<double>::infinity();
    }
    if (count > extra) {
      std::nth_element(ranked, ranked + extra, ranked + count, [](const RankedAtom& a, const RankedAtom& b) {
        return a.priority < b.priority || (a.priority == b.priority && a.atom < b.atom);
      });
      count = extra;
    }
    int32_t* candidates = ws.candidates.data();
    for (int64_t e = 0; e < count; ++e) candidates[e] = ranked[e].atom;
    std::sort(candidates, candidates + count);
    // Merge the support and the chosen atoms, both increasing.
    int32_t* atoms = ws.atoms.data();
    int64_t n = 0, e = 0, k = 0;
    while (e < xCount || k < count) {
      if (k == count || (e < xCount && xIndex[e] < candidates[k])) {
        atoms[n++] = xIndex[e++];
      } else {
        atoms[n++] = candidates[k++];
      }
    }
    return n;
  };

  int32_t iterations = 0;
  bool converged = false;
  double factor = 1.0;  // of the tolerance, for W's own test
  double curvature = std::min(largestAtomSquaredNorm_ > 0.0 ? largestAtomSquaredNorm_ : lipschitz_, lipschitz_);
  Check check = checkEveryAtom();
  bool checked = true;  // check describes the current x
  int64_t previousCount = 0;  // atoms in the previous W (0: none, or every atom)
  for (;;) {
    if (!checked) {
      check = checkEveryAtom();
      checked = true;
    }
    if (met(check.violation, check.gap, 1.0)) {
      converged = true;
      break;
    }
    if (iterations >= config_.maxIter) break;

    // The subproblem on W: n atoms, their c and rows of G (compact unless W is every atom).
    std::swap(ws.atoms, ws.previousAtoms);
    std::swap(ws.compactGram, ws.previousGram);
    std::swap(ws.filled, ws.previousFilled);
    const int64_t n = chooseWorkingSet(check);
    const bool everyAtom = n == m;
    const int32_t* atoms = ws.atoms.data();
    const float* c = cFull;
    const float* rows = gram;
    if (!everyAtom) {
      for (int64_t a = 0; a < n; ++a) ws.compactC[a] = cFull[atoms[a]];
      std::memset(ws.filled.data(), 0, static_cast<size_t>(n));
      c = ws.compactC.data();
      rows = ws.compactGram.data();
      ws.carriedCount = ws.freshCount = 0;
      for (int64_t a = 0, p = 0; a < n; ++a) {
        while (p < previousCount && ws.previousAtoms[p] < atoms[a]) ++p;
        const bool held = p < previousCount && ws.previousAtoms[p] == atoms[a];
        ws.previousLocal[a] = held ? static_cast<int32_t>(p) : -1;
        if (held) {
          ws.carriedLocal[ws.carriedCount] = static_cast<int32_t>(a);
          ws.carriedFrom[ws.carriedCount++] = static_cast<int32_t>(p);
        } else {
          ws.freshLocal[ws.freshCount] = static_cast<int32_t>(a);
          ws.freshAtom[ws.freshCount++] = atoms[a];
        }
      }
    }
    // Rows of the compact G for these local atoms: from the previous W's row where it made one
    // (its entries for atoms of both), else from G.
    const auto ensureRows = [&](const int32_t* index, int64_t count) {
      if (everyAtom) return;
      for (int64_t e = 0; e < count; ++e) {
        const int32_t a = index[e];
        if (ws.filled[a]) continue;
        const float* source = gram + static_cast<int64_t>(atoms[a]) * m;
        float* target = ws.compactGram.data() + static_cast<int64_t>(a) * n;
        const int32_t old = ws.previousLocal[a];
        if (old >= 0 && ws.previousFilled[old]) {
          const float* carried = ws.previousGram.data() + static_cast<int64_t>(old) * previousCount;
          for (int64_t k = 0; k < ws.carriedCount; ++k) target[ws.carriedLocal[k]] = carried[ws.carriedFrom[k]];
          for (int64_t k = 0; k < ws.freshCount; ++k) target[ws.freshLocal[k]] = source[ws.freshAtom[k]];
        } else {
          for (int64_t b = 0; b < n; ++b) target[b] = source[atoms[b]];
        }
        ws.filled[a] = 1;
      }
    };
    // x on W, and x G from the check.
    FistaMomentum momentum;
    int& xs = momentum.xs;
    int& ps = momentum.ps;
    int& zs = momentum.zs;
    {
      double* v = ws.values[xs].data();
      float* product = ws.products[xs].data();
      std::memset(v, 0, static_cast<size_t>(n) * sizeof(double));
      int64_t a = 0;
      for (int64_t e = 0; e < xCount; ++e) {
        if (!everyAtom) {
          while (atoms[a] != xIndex[e]) ++a;
        } else {
          a = xIndex[e];
        }
        v[a] = xValue[e];
        ws.nonzeros[xs][e] = static_cast<int32_t>(a);
        ws.coef[xs][e] = static_cast<float>(xValue[e]);
      }
      ws.counts[xs] = xCount;
      for (int64_t b = 0; b < n; ++b) product[b] = ws.fullProducts[everyAtom ? b : atoms[b]];
    }
    FistaSums xSums = check.sums;

    FistaStep step{momentum.alpha, momentum.beta, 1.0 / curvature, lambda / curvature, lambda, nonNegative};
    double startGap = -1.0;
    int64_t steps = 0;
    bool solved = false;  // W met the (tightened) tolerance
    for (;;) {
      // z = prox(y), and the optimality of x on W, in one pass (p == x while beta is 0).
      const FistaStepResult r =
          kernels_.fistaStep(step, ws.values[xs].data(), ws.values[ps].data(), ws.products[xs].data(),
                             ws.products[ps].data(), c, ws.values[zs].data(), ws.nonzeros[zs].data(),
                             ws.coef[zs].data(), n);
      ws.counts[zs] = r.count;
      const Gap gap = gapAt(xSums, r.largest);
      if (everyAtom) {
        // W is every atom: its test is the row's.
        check = Check{r.violation, r.largest, gap, xSums};
        if (met(r.violation, gap, 1.0)) {
          converged = true;
          break;
        }
      } else {
        if (startGap < 0.0) startGap = gap.gap;
        if (steps > 0) {
          solved = met(r.violation, gap, 0.5 * factor);
          if (solved || gap.gap <= kFistaSubproblemGapFraction * startGap) break;
        }
      }
      if (iterations >= config_.maxIter) break;
      ++iterations;
      ++steps;

      float* zG = ws.products[zs].data();
      const float* xG = ws.products[xs].data();
      ensureRows(ws.nonzeros[zs].data(), ws.counts[zs]);
      kernels_.combineRows(rows, n, ws.nonzeros[zs].data(), ws.coef[zs].data(), ws.counts[zs], zG, n);
      const FistaStepSums t =
          kernels_.fistaStepSums(step.alpha, step.beta, ws.values[xs].data(), ws.values[ps].data(), ws.values[zs].data(),
                                 xG, ws.products[ps].data(), zG, c, n);
      if (curvature < lipschitz_ && t.along > curvature * t.length) {
        // Backtracking: G's curvature along z - y must not exceed L.
        curvature = std::min(lipschitz_, std::max(2.0 * curvature, t.along / t.length));
        step.invL = 1.0 / curvature;
        step.threshold = lambda / curvature;
        continue;
      }
      const FistaSums zSums{t.zDotC, t.zQuadratic, t.zL1};
      const double change = t.change + lambda * (zSums.l1 - xSums.l1);
      if (momentum.advance(change, r.restart > 0.0)) xSums = zSums;
      step.alpha = momentum.alpha;
      step.beta = momentum.beta;
    }

    // x back over every atom (local non-zeros are increasing, and so are W's atoms).
    xCount = ws.counts[xs];
    for (int64_t e = 0; e < xCount; ++e) {
      const int32_t a = ws.nonzeros[xs][e];
      xIndex[e] = everyAtom ? a : atoms[a];
      xValue[e] = ws.values[xs][a];
    }
    if (everyAtom) break;  // converged, or out of iterations: check describes x
    previousCount = n;
    checked = false;
    if (solved) {
      check = checkEveryAtom();
      checked = true;
      if (!fistaTightenAfterCheck(met(check.violation, check.gap, 1.0), violatorsOutside, factor)) break;
    }
  }
  if (!checked) check = checkEveryAtom();

  // Report from the explicit residual r = x - z D in double, not from the Gram form, whose
  // float G and c limit the objective to about 1e-7 of ||x||^2.
  double* r = ws.residual.data();
  for (int64_t i = 0; i < d_; ++i) r[i] = xRow[i];
  double l1 = 0.0;
  for (int64_t e = 0; e < xCount; ++e) l1 += std::fabs(xValue[e]);
  kernels_.subtractRows(dictionary_.data(), d_, xIndex, xValue, xCount, r, d_);
  double residualSquared = 0.0, residualDotX = 0.0;
  for (int64_t i = 0; i < d_; ++i) {
    residualSquared += r[i] * r[i];
    residualDotX += r[i] * xRow[i];
  }
  RowOutcome outcome;
  outcome.iterations = iterations;
  outcome.converged = converged;
  outcome.squaredError = residualSquared;
  outcome.l1 = l1;
  outcome.nnz = xCount;
  outcome.objective = 0.5 * residualSquared + lambda * l1;
  const double u = check.largest > lambda ? lambda / check.largest : 1.0;
  outcome.gap = std::max(outcome.objective - (u * residualDotX - 0.5 * u * u * residualSquared), 0.0);
  outcome.kkt = scale > 0.0 ? check.violation / scale : 0.0;
  return outcome;
}

void CpuFista::encode(const float* x, int64_t rows, const float* init, float* codes, FistaRowResults& results) {
  checkFinite(x, rows * d_, d_, "x.data");
  if (init != nullptr) checkFinite(init, rows * m_, m_, "options.init.data");
  prepare();
  results.resize(rows);
  solveRows(
      x, rows, solveBlocking(rows),
      [&](int64_t row, RowWorkspace& ws) {
        ws.initCount = 0;
        if (init == nullptr) return;
        const float* start = init + row * m_;
        for (int64_t j = 0; j < m_; ++j) {
          if (start[j] != 0.0f) {
            ws.initIndex[ws.initCount] = static_cast<int32_t>(j);
            ws.initValue[ws.initCount++] = start[j];
          }
        }
      },
      [&](int64_t row, int64_t, const RowWorkspace& ws, const RowOutcome& outcome) {
        float* out = codes + row * m_;
        std::memset(out, 0, static_cast<size_t>(m_) * sizeof(float));
        for (int64_t e = 0; e < ws.count(); ++e) out[ws.index(e)] = static_cast<float>(ws.value(e));
        results.iterations[row] = outcome.iterations;
        results.objective[row] = outcome.objective;
        results.gap[row] = outcome.gap;
        results.kkt[row] = outcome.kkt;
        results.converged[row] = outcome.converged ? 1 : 0;
      });
}

void CpuFista::forgetCodes() {
  if (learning_) learning_->forgetCodes();
}

void CpuFista::getDictionary(float* out) const {
  std::memcpy(out, dictionary_.data(), static_cast<size_t>(m_ * d_) * sizeof(float));
}

FistaStepStats CpuFista::learnStep(const float* x, int64_t rows, const int32_t* rowIds) {
  if (!learning_) throwError("ERR_NOT_LEARNING", "This FISTA model codes with a fixed dictionary and cannot learn");
  checkFinite(x, rows * d_, d_, "batch.data");
  learning_->checkRowIds(rowIds, rows);
  prepare();

  // Codes for the batch, each row starting from the codes it got last time.
  const RowBlocking blocking = solveBlocking(rows);
  if (blocks_.size() < static_cast<size_t>(blocking.count)) blocks_.resize(static_cast<size_t>(blocking.count));
  for (int64_t b = 0; b < blocking.count; ++b) {
    blocks_[b].indices.clear();
    blocks_[b].values.clear();
    blocks_[b].rowEnd.resize(static_cast<size_t>(std::min(blocking.size, rows - b * blocking.size)));
  }
  outcomes_.resize(static_cast<size_t>(rows));
  solveRows(
      x, rows, blocking,
      [&](int64_t row, RowWorkspace& ws) {
        ws.initCount = rowIds == nullptr ? 0 : learning_->warmStart(rowIds[row], ws.initIndex.data(), ws.initValue.data());
      },
      [&](int64_t row, int64_t block, const RowWorkspace& ws, const RowOutcome& outcome) {
        BlockCodes& codes = blocks_[block];
        // The kernel lists non-zeros in increasing atom order, as CSR rows are everywhere else.
        const size_t start = codes.indices.size();
        codes.indices.resize(start + static_cast<size_t>(ws.count()));
        codes.values.resize(start + static_cast<size_t>(ws.count()));
        for (int64_t e = 0; e < ws.count(); ++e) {
          codes.indices[start + e] = ws.index(e);
          codes.values[start + e] = static_cast<float>(ws.value(e));
        }
        codes.rowEnd[row - block * blocking.size] = static_cast<int64_t>(codes.indices.size());
        outcomes_[row] = outcome;
      });
  gatherCodes(blocking, rows);

  StepTotals totals;
  for (int64_t r = 0; r < rows; ++r) {
    const RowOutcome& o = outcomes_[r];
    totals.add(o.objective, o.squaredError, o.l1, o.iterations);
  }
  FistaStepStats stats = totals.finish(rows, d_, batchCodes_.nonzeros(rows));
  learning_->keepCodes(rowIds, rows, batchCodes_);
  stats.resampled = learning_->update(pool_, kernels_, x, rows, batchCodes_, dictionary_.data());
  prepared_ = false;
  return stats;
}

void CpuFista::gatherCodes(const RowBlocking& blocking, int64_t rows) {
  batchCodes_.start.resize(static_cast<size_t>(rows + 1));
  batchCodes_.start[0] = 0;
  int64_t total = 0;
  for (int64_t b = 0; b < blocking.count; ++b) {
    const BlockCodes& codes = blocks_[b];
    const int64_t row0 = b * blocking.size;
    for (size_t r = 0; r < codes.rowEnd.size(); ++r) batchCodes_.start[row0 + r + 1] = total + codes.rowEnd[r];
    total += static_cast<int64_t>(codes.indices.size());
  }
  batchCodes_.index.resize(static_cast<size_t>(total));
  batchCodes_.value.resize(static_cast<size_t>(total));
  for (int64_t b = 0; b < blocking.count; ++b) {
    const BlockCodes& codes = blocks_[b];
    const size_t count = codes.indices.size();
    if (count == 0) continue;
    const int64_t offset = batchCodes_.start[b * blocking.size];
    std::memcpy(batchCodes_.index.data() + offset, codes.indices.data(), count * sizeof(int32_t));
    std::memcpy(batchCodes_.value.data() + offset, codes.values.data(), count * sizeof(float));
  }
}

}  // namespace
}  // namespace cpu

std::unique_ptr<FistaBackend> createCpuFista(const FistaConfig& config, const float* dictionary) {
  return std::make_unique<cpu::CpuFista>(config, dictionary);
}

}  // namespace saekit
