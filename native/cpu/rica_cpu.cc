// RICA's cost and gradient on the CPU, as five products on the blocked GEMM. With N rows of x
// [N, d], k features and V [k, d] (W with unit rows, or W itself):
//
//   Y = x V^T        [N, k]   epilogue: each row's penalty sum g(y) and active count
//   R = Y V - x      [N, d]   epilogue: subtract x, each row's squared error
//   G = R V^T + lambda g'(Y)  [N, k]
//   dV = (G^T x + Y^T R) / N  [k, d]   A^T B products whose depth is N
//   dW = (dV - (dV . v) v) / ||w||, row by row, when the rows are normalised
//
// (10 N k d flops in all). Every element of every product is summed in an order fixed by the
// GEMM's depth blocking alone, and the per-row sums are reduced in row order, so the cost and
// gradient are bit-identical whatever the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "../core/buffer.h"
#include "../core/ceil_div.h"
#include "../core/checks.h"
#include "../core/error.h"
#include "../core/memory.h"
#include "../core/rica.h"
#include "../core/rng.h"
#include "../core/thread_pool.h"
#include "gemm.h"
#include "kernels.h"
#include "model_support.h"

namespace saekit {

size_t ricaStateBytes(const RicaConfig& config) {
  // W, Adam's two moments, V, Adam's gradient, and V packed in two layouts.
  const long double weights = static_cast<long double>(config.dIn) * config.dHidden;
  const long double bytes = (weights * 7 + config.dHidden) * sizeof(float);
  if (bytes >= static_cast<long double>(std::numeric_limits<size_t>::max() / 2)) {
    return std::numeric_limits<size_t>::max() / 2;
  }
  return static_cast<size_t>(bytes);
}

namespace cpu {
namespace {

constexpr int64_t kFeatureChunk = 16;  // features per task in per-feature passes



// v = w / ||w|| (or w itself); returns the factor applied. A zero row has no direction: it
// stays zero and, with factor 0, gets a zero gradient.
float directionOf(const float* w, int64_t d, bool normalize, float* v) {
  if (!normalize) {
    std::memcpy(v, w, static_cast<size_t>(d) * sizeof(float));
    return 1.0f;
  }
  double norm2 = 0.0;
  for (int64_t i = 0; i < d; ++i) norm2 += static_cast<double>(w[i]) * w[i];
  const float inverse = norm2 > 0.0 ? static_cast<float>(1.0 / std::sqrt(norm2)) : 0.0f;
  for (int64_t i = 0; i < d; ++i) v[i] = w[i] * inverse;
  return inverse;
}

const RowBlockDone kNothingAfter = [](int, int64_t, int64_t, int64_t, float*, int64_t) {};

class CpuRica final : public RicaBackend {
 public:
  explicit CpuRica(const RicaConfig& config);

  const RicaConfig& config() const override { return config_; }
  const char* device() const override { return "cpu"; }
  int64_t stepsTaken() const override { return steps_; }
  size_t bytesHeld() const override;

  RicaStats costGradient(const float* weights, const float* x, int64_t rows, float* gradient, bool sameX) override;
  RicaStats adamStep(const float* x, int64_t rows) override;
  void encode(const float* x, int64_t rows, float* codes) override;
  void getWeights(float* out) const override;
  void setWeights(const float* weights) override;
  void dictionary(float* out) const override;

 private:
  void checkFinite(const float* x, int64_t count, const char* name);
  // V and the normalisation factors from `weights`, packed for both products with V.
  void prepareDirections(const float* weights);
  void reserveRows(int64_t rows);
  RicaStats evaluate(const float* weights, const float* x, int64_t rows, float* gradient);

  RicaConfig config_;
  int64_t d_;
  int64_t k_;
  ThreadPool pool_;
  const Kernels& kernels_;
  Buffer<float> weights_;  // W [k, d]
  Buffer<float> adamM_;
  Buffer<float> adamV_;
  Buffer<float> adamGradient_;
  int64_t steps_ = 0;
  // The x that costGradient last checked, for calls with sameX.
  const float* checkedX_ = nullptr;
  int64_t checkedRows_ = 0;

  Buffer<float> directions_;     // V [k, d]
  Buffer<float> inverseNorms_;   // [k]: 1 / ||w_j|| (1 without normalisation)
  PackedB directionsAsColumns_;  // V for x V^T and R V^T: n = k, depth d
  PackedB directionsAsDepth_;    // V for Y V: n = d, depth k
  PackedB packedRows_;           // x, then R: the right operands of the depth-N products
  GemmScratch gemmScratch_;
  Buffer<float> codes_;          // Y [N, k]
  Buffer<float> residual_;       // R [N, d]
  Buffer<float> codeGradient_;   // G [N, k]
  Buffer<double> rowPenalty_;
  Buffer<double> rowSquaredError_;
  Buffer<int32_t> rowActive_;
};

CpuRica::CpuRica(const RicaConfig& config)
    : config_(config),
      d_(config.dIn),
      k_(config.dHidden),
      pool_(config.threads),
      kernels_(requireKernels(config.cpuKernels)) {
  checkMemory(ricaStateBytes(config), "A Rica with dIn " + std::to_string(d_) + " and dHidden " +
                                          std::to_string(k_) + " (parameters and optimizer state)");
  const size_t size = static_cast<size_t>(d_ * k_);
  weights_.resize(size);
  adamM_.resize(size);
  adamV_.resize(size);
  adamM_.zero();
  adamV_.zero();
  randomUnitRows(pool_, weights_.data(), k_, d_, config_.seed);
}

size_t CpuRica::bytesHeld() const {
  return weights_.bytes() + adamM_.bytes() + adamV_.bytes() + adamGradient_.bytes() + directions_.bytes() +
         inverseNorms_.bytes() + directionsAsColumns_.data.bytes() + directionsAsDepth_.data.bytes() +
         packedRows_.data.bytes() + gemmScratch_.bytes() + codes_.bytes() + residual_.bytes() +
         codeGradient_.bytes() + rowPenalty_.bytes() + rowSquaredError_.bytes() + rowActive_.bytes();
}

void CpuRica::checkFinite(const float* x, int64_t count, const char* name) {
  checkFiniteParallel(pool_, kernels_, x, count, d_, name);
}

void CpuRica::prepareDirections(const float* weights) {
  directions_.resize(static_cast<size_t>(k_ * d_));
  inverseNorms_.resize(static_cast<size_t>(k_));
  pool_.run(static_cast<size_t>(ceilDiv(k_, kFeatureChunk)), [&](size_t task, int) {
    const int64_t j1 = std::min(k_, static_cast<int64_t>(task + 1) * kFeatureChunk);
    for (int64_t j = static_cast<int64_t>(task) * kFeatureChunk; j < j1; ++j) {
      inverseNorms_[j] = directionOf(weights + j * d_, d_, config_.normalizeRows, directions_.data() + j * d_);
    }
  });
  packB(kernels_, pool_, directions_.data(), d_, Layout::RowsAreColumnsOfC, k_, d_, directionsAsColumns_);
  packB(kernels_, pool_, directions_.data(), d_, Layout::RowsAreK, d_, k_, directionsAsDepth_);
}

void CpuRica::reserveRows(int64_t rows) {
  const size_t codes = static_cast<size_t>(rows * k_);
  if (codes_.capacity() < codes || residual_.capacity() < static_cast<size_t>(rows * d_)) {
    // Y, G, R, x or R packed (padded to whole panels), and the per-row sums.
    const uint64_t paddedD = static_cast<uint64_t>(ceilDiv(d_, kernels_.nr) * kernels_.nr);
    const uint64_t bytes = static_cast<uint64_t>(rows) *
                           ((2 * k_ + d_ + paddedD) * sizeof(float) + 2 * sizeof(double) + sizeof(int32_t));
    checkMemory(bytes, "RICA's cost on " + std::to_string(rows) + " rows (scratch)");
  }
  codes_.resize(codes);
  codeGradient_.resize(codes);
  residual_.resize(static_cast<size_t>(rows * d_));
  rowPenalty_.resize(static_cast<size_t>(rows));
  rowSquaredError_.resize(static_cast<size_t>(rows));
  rowActive_.resize(static_cast<size_t>(rows));
}

RicaStats CpuRica::evaluate(const float* weights, const float* x, int64_t rows, float* gradient) {
  if (rows < 1) throwRangeError("Expected at least one row in x for RICA's cost");
  const int64_t d = d_;
  const int64_t k = k_;
  prepareDirections(weights);
  reserveRows(rows);
  float* y = codes_.data();
  float* r = residual_.data();
  float* g = codeGradient_.data();
  const float epsilon = config_.epsilon;
  const float lambda = config_.lambda;
  const float activeAbove = std::sqrt(epsilon);
  const RowBlocking byRows = chooseRowBlocking(rows, pool_.size(), kernels_.mr);

  gemm(kernels_, pool_, gemmScratch_, OperandA{x, d}, rows, directionsAsColumns_, y, k, byRows,
       [&](int, int64_t, int64_t row0, int64_t blockRows, float* c, int64_t ldc) {
         for (int64_t i = 0; i < blockRows; ++i) {
           const float* yRow = c + i * ldc;
           double penalty = 0.0;
           int32_t active = 0;
           for (int64_t j = 0; j < k; ++j) {
             const float u = yRow[j];
             penalty += std::sqrt(u * u + epsilon);
             active += std::fabs(u) > activeAbove;
           }
           rowPenalty_[row0 + i] = penalty;
           rowActive_[row0 + i] = active;
         }
       });

  gemm(kernels_, pool_, gemmScratch_, OperandA{y, k}, rows, directionsAsDepth_, r, d, byRows,
       [&](int, int64_t, int64_t row0, int64_t blockRows, float* c, int64_t ldc) {
         for (int64_t i = 0; i < blockRows; ++i) {
           float* rRow = c + i * ldc;
           const float* xRow = x + (row0 + i) * d;
           double squared = 0.0;
           for (int64_t q = 0; q < d; ++q) {
             const float e = rRow[q] - xRow[q];
             rRow[q] = e;
             squared += static_cast<double>(e) * e;
           }
           rowSquaredError_[row0 + i] = squared;
         }
       });

  gemm(kernels_, pool_, gemmScratch_, OperandA{r, d}, rows, directionsAsColumns_, g, k, byRows,
       [&](int, int64_t, int64_t row0, int64_t blockRows, float* c, int64_t ldc) {
         for (int64_t i = 0; i < blockRows; ++i) {
           float* gRow = c + i * ldc;
           const float* yRow = y + (row0 + i) * k;
           for (int64_t j = 0; j < k; ++j) {
             const float u = yRow[j];
             gRow[j] += lambda * u / std::sqrt(u * u + epsilon);
           }
         }
       });

  // dV = G^T x + Y^T R, accumulated over all N rows by the GEMM's depth loop.
  const RowBlocking byFeatures = chooseRowBlocking(k, pool_.size(), kernels_.mr);
  packB(kernels_, pool_, x, d, Layout::RowsAreK, d, rows, packedRows_);
  gemm(kernels_, pool_, gemmScratch_, OperandA{g, k, true}, k, packedRows_, gradient, d, byFeatures, kNothingAfter);
  packB(kernels_, pool_, r, d, Layout::RowsAreK, d, rows, packedRows_);
  gemm(kernels_, pool_, gemmScratch_, OperandA{y, k, true}, k, packedRows_, nullptr, 0, byFeatures,
       [&](int, int64_t, int64_t row0, int64_t blockRows, float* c, int64_t ldc) {
         for (int64_t i = 0; i < blockRows; ++i) kernels_.axpy(1.0f, c + i * ldc, gradient + (row0 + i) * d, d);
       });

  // The mean over rows, then back through the normalisation w -> w / ||w||.
  const float perRow = 1.0f / static_cast<float>(rows);
  pool_.run(static_cast<size_t>(ceilDiv(k, kFeatureChunk)), [&](size_t task, int) {
    const int64_t j1 = std::min(k, static_cast<int64_t>(task + 1) * kFeatureChunk);
    for (int64_t j = static_cast<int64_t>(task) * kFeatureChunk; j < j1; ++j) {
      float* gRow = gradient + j * d;
      float scale = perRow;
      if (config_.normalizeRows) {
        const float* v = directions_.data() + j * d;
        kernels_.axpy(-kernels_.dot(gRow, v, d), v, gRow, d);
        scale *= inverseNorms_[j];
      }
      for (int64_t q = 0; q < d; ++q) gRow[q] *= scale;
    }
  });

  double penalty = 0.0, squared = 0.0, active = 0.0;
  for (int64_t i = 0; i < rows; ++i) {
    penalty += rowPenalty_[i];
    squared += rowSquaredError_[i];
    active += rowActive_[i];
  }
  RicaStats stats;
  stats.sparsity = penalty / static_cast<double>(rows);
  stats.reconstruction = 0.5 * squared / static_cast<double>(rows);
  stats.loss = static_cast<double>(lambda) * stats.sparsity + stats.reconstruction;
  stats.l0 = active / static_cast<double>(rows);
  return stats;
}

RicaStats CpuRica::costGradient(const float* weights, const float* x, int64_t rows, float* gradient,
                                bool sameX) {
  checkFinite(weights, k_ * d_, "weights");
  if (!(sameX && x == checkedX_ && rows == checkedRows_)) {
    checkedX_ = nullptr;
    checkFinite(x, rows * d_, "x.data");
    checkedX_ = x;
    checkedRows_ = rows;
  }
  return evaluate(weights, x, rows, gradient);
}

RicaStats CpuRica::adamStep(const float* x, int64_t rows) {
  checkFinite(x, rows * d_, "batch.data");
  adamGradient_.resize(static_cast<size_t>(k_ * d_));
  const RicaStats stats = evaluate(weights_.data(), x, rows, adamGradient_.data());
  const int64_t t = steps_ + 1;
  const double bc1 = 1.0 - std::pow(static_cast<double>(config_.beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(config_.beta2), static_cast<double>(t));
  const AdamStep step{config_.beta1, config_.beta2, config_.eps, static_cast<float>(config_.lr / bc1),
                      static_cast<float>(std::sqrt(bc2))};
  pool_.run(static_cast<size_t>(ceilDiv(k_, kFeatureChunk)), [&](size_t task, int) {
    const int64_t j0 = static_cast<int64_t>(task) * kFeatureChunk;
    const int64_t offset = j0 * d_;
    const int64_t count = (std::min(k_, j0 + kFeatureChunk) - j0) * d_;
    kernels_.adam(weights_.data() + offset, adamM_.data() + offset, adamV_.data() + offset,
                  adamGradient_.data() + offset, count, step);
  });
  steps_ = t;
  return stats;
}

void CpuRica::encode(const float* x, int64_t rows, float* codes) {
  checkFinite(x, rows * d_, "x.data");
  prepareDirections(weights_.data());
  gemm(kernels_, pool_, gemmScratch_, OperandA{x, d_}, rows, directionsAsColumns_, codes, k_,
       chooseRowBlocking(rows, pool_.size(), kernels_.mr), kNothingAfter);
}

void CpuRica::getWeights(float* out) const {
  std::memcpy(out, weights_.data(), static_cast<size_t>(k_ * d_) * sizeof(float));
}

void CpuRica::setWeights(const float* weights) {
  const int64_t bad = kernels_.firstNonFinite(weights, k_ * d_);
  if (bad < k_ * d_) throwNonFinite("weights", weights[bad], bad, d_);
  std::memcpy(weights_.data(), weights, static_cast<size_t>(k_ * d_) * sizeof(float));
}

void CpuRica::dictionary(float* out) const {
  for (int64_t j = 0; j < k_; ++j) directionOf(weights_.data() + j * d_, d_, config_.normalizeRows, out + j * d_);
}

}  // namespace
}  // namespace cpu

std::unique_ptr<RicaBackend> createCpuRica(const RicaConfig& config) {
  return std::make_unique<cpu::CpuRica>(config);
}

}  // namespace saekit
