#include "fista_learning.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "../core/ceil_div.h"
#include "../core/error.h"
#include "../core/memory.h"

namespace saekit::cpu {

namespace {

constexpr int64_t kAtomChunk = 32;    // atoms per task when updating the statistics
constexpr double kUnusedAtom = 1e-6;  // scikit-learn's (and SPAMS's) A_kk threshold


}  // namespace

void DictionaryLearning::checkRowIds(const int32_t* rowIds, int64_t rows) const {
  if (rowIds == nullptr) return;
  int32_t largest = -1;
  for (int64_t r = 0; r < rows; ++r) {
    if (rowIds[r] < 0) {
      throwRangeError("Expected non-negative row ids but rowIds[" + std::to_string(r) + "] is " + std::to_string(rowIds[r]));
    }
    largest = std::max(largest, rowIds[r]);
  }
  const size_t slots = static_cast<size_t>(largest) + 1;
  if (slots > kept_.size()) {
    checkMemory((slots - kept_.size()) * sizeof(KeptCodes), "Warm-start slots for row ids up to " + std::to_string(largest));
  }
}

void StepTotals::add(double objective, double squaredError, double l1, int64_t iterations) {
  loss_ += objective;
  squared_ += squaredError;
  l1_ += l1;
  iterations_ += static_cast<double>(iterations);
  maxIterations_ = std::max(maxIterations_, iterations);
}

FistaStepStats StepTotals::finish(int64_t rows, int64_t d, int64_t nonzeros) const {
  const double n = static_cast<double>(rows);
  FistaStepStats stats;
  stats.loss = loss_ / n;
  stats.mse = squared_ / (n * static_cast<double>(d));
  stats.l1 = l1_ / n;
  stats.l0 = static_cast<double>(nonzeros) / n;
  stats.iterations = iterations_ / n;
  stats.maxIterations = maxIterations_;
  return stats;
}

DictionaryLearning::DictionaryLearning(int64_t m, int64_t d, uint64_t seed) : m_(m), d_(d), seed_(seed) {
  statsA_.resize(static_cast<size_t>(m_ * m_));
  statsB_.resize(static_cast<size_t>(m_ * d_));
  statsA_.zero();
  statsB_.zero();
  redrawnAt_.resize(static_cast<size_t>(m_));
  std::fill(redrawnAt_.data(), redrawnAt_.data() + m_, int64_t{-1});
}

size_t DictionaryLearning::bytes() const {
  size_t total = statsA_.bytes() + statsB_.bytes() + redrawnAt_.bytes() + cscStart_.bytes() + cscFill_.bytes() +
                 cscRow_.bytes() + cscValue_.bytes() + atomIndex_.bytes() + atomCoef_.bytes() + atomSum_.bytes();
  for (const auto& kept : kept_) total += kept.indices.bytes() + kept.values.bytes();
  return total;
}

int64_t DictionaryLearning::warmStart(int32_t id, int32_t* index, float* value) const {
  if (id < 0 || static_cast<size_t>(id) >= kept_.size()) return 0;
  const KeptCodes& kept = kept_[static_cast<size_t>(id)];
  if (kept.step < 0) return 0;
  int64_t count = 0;
  for (size_t e = 0; e < kept.indices.size(); ++e) {
    const int32_t j = kept.indices[e];
    if (redrawnAt_[j] >= kept.step) continue;
    index[count] = j;
    value[count++] = kept.values[e];
  }
  return count;
}

void DictionaryLearning::keepCodes(const int32_t* rowIds, int64_t rows, const CodeRows& codes) {
  if (rowIds == nullptr) return;
  for (int64_t r = 0; r < rows; ++r) {
    const size_t id = static_cast<size_t>(rowIds[r]);
    if (id >= kept_.size()) kept_.resize(id + 1);
    KeptCodes& kept = kept_[id];
    const size_t count = static_cast<size_t>(codes.start[r + 1] - codes.start[r]);
    kept.indices.resize(count);
    kept.values.resize(count);
    if (count > 0) {
      std::memcpy(kept.indices.data(), codes.index.data() + codes.start[r], count * sizeof(int32_t));
      std::memcpy(kept.values.data(), codes.value.data() + codes.start[r], count * sizeof(float));
    }
    kept.step = steps_;
  }
}

void DictionaryLearning::forgetCodes() {
  kept_.clear();
  kept_.shrink_to_fit();
}

int64_t DictionaryLearning::update(ThreadPool& pool, const Kernels& kernels, const float* x, int64_t rows,
                                   const CodeRows& codes, float* dictionary) {
  // Every scratch buffer is sized first: past this point nothing allocates, so a failed
  // allocation leaves A, B and the dictionary as they were.
  const int64_t nnz = codes.nonzeros(rows);
  cscStart_.resize(static_cast<size_t>(m_ + 1));
  cscFill_.resize(static_cast<size_t>(m_));
  cscRow_.resize(static_cast<size_t>(nnz));
  cscValue_.resize(static_cast<size_t>(nnz));
  atomIndex_.resize(static_cast<size_t>(m_));
  atomCoef_.resize(static_cast<size_t>(m_));
  atomSum_.resize(static_cast<size_t>(d_));
  updateStatistics(pool, kernels, x, rows, codes);
  const int64_t redrawn = updateAtoms(kernels, x, rows, dictionary);
  ++steps_;
  return redrawn;
}

// A = beta A + Z^T Z / rows and B = beta B + Z^T X / rows, with scikit-learn's forgetting
// factor beta (MiniBatchDictionaryLearning._update_inner_stats): past batches are weighted
// down as (theta + 1 - rows) / (theta + 1), theta growing with the step.
void DictionaryLearning::updateStatistics(ThreadPool& pool, const Kernels& kernels, const float* x, int64_t rows,
                                          const CodeRows& codes) {
  const double batch = static_cast<double>(rows);
  const double step = static_cast<double>(steps_);
  const double theta = step < batch - 1.0 ? (step + 1.0) * batch : batch * batch + step + 1.0 - batch;
  const float beta = static_cast<float>((theta + 1.0 - batch) / (theta + 1.0));
  const float weight = static_cast<float>(1.0 / batch);
  const int64_t* csrStart = codes.start.data();
  const int32_t* csrIndex = codes.index.data();
  const float* csrValue = codes.value.data();

  // The batch's codes grouped by atom, rows in order within an atom (buffers sized by update).
  const int64_t nnz = codes.nonzeros(rows);
  cscStart_.zero();
  for (int64_t e = 0; e < nnz; ++e) ++cscStart_[csrIndex[e] + 1];
  for (int64_t k = 0; k < m_; ++k) {
    cscStart_[k + 1] += cscStart_[k];
    cscFill_[k] = cscStart_[k];
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t e = csrStart[r]; e < csrStart[r + 1]; ++e) {
      const int64_t slot = cscFill_[csrIndex[e]]++;
      cscRow_[slot] = static_cast<int32_t>(r);
      cscValue_[slot] = csrValue[e];
    }
  }

  pool.run(static_cast<size_t>(ceilDiv(m_, kAtomChunk)), [&](size_t task, int) {
    const int64_t k1 = std::min(m_, static_cast<int64_t>(task + 1) * kAtomChunk);
    for (int64_t k = static_cast<int64_t>(task) * kAtomChunk; k < k1; ++k) {
      float* a = statsA_.data() + k * m_;
      float* b = statsB_.data() + k * d_;
      for (int64_t j = 0; j < m_; ++j) a[j] *= beta;
      for (int64_t i = 0; i < d_; ++i) b[i] *= beta;
      for (int64_t slot = cscStart_[k]; slot < cscStart_[k + 1]; ++slot) {
        const int64_t r = cscRow_[slot];
        const float scaled = cscValue_[slot] * weight;
        for (int64_t e = csrStart[r]; e < csrStart[r + 1]; ++e) a[csrIndex[e]] += scaled * csrValue[e];
        kernels.axpy(scaled, x + r * d_, b, d_);
      }
    }
  });
}

// One pass of block coordinate descent over the atoms (Mairal et al. 2009, Algorithm 2):
// d_k += (B_k - A_k D) / A_kk, then d_k / ||d_k||. Sequential: each atom's update sees the
// atoms before it already updated. Returns the number of atoms redrawn.
int64_t DictionaryLearning::updateAtoms(const Kernels& kernels, const float* x, int64_t rows, float* dictionary) {
  double meanSquaredNorm = 0.0;
  for (int64_t i = 0; i < rows * d_; ++i) meanSquaredNorm += static_cast<double>(x[i]) * x[i];
  meanSquaredNorm /= static_cast<double>(rows);
  const double unused = kUnusedAtom * meanSquaredNorm;
  Rng rng(seed_ * 0x9e3779b97f4a7c15ULL + 0x5eed0000ULL + static_cast<uint64_t>(steps_) * 0xbf58476d1ce4e5b9ULL);
  int64_t redrawn = 0;
  for (int64_t k = 0; k < m_; ++k) {
    const float* a = statsA_.data() + k * m_;
    float* atom = dictionary + k * d_;
    const double akk = a[k];
    bool redraw = !(akk > unused);
    if (!redraw) {
      int64_t count = 0;
      for (int64_t j = 0; j < m_; ++j) {
        if (a[j] != 0.0f) {
          atomIndex_[count] = static_cast<int32_t>(j);
          atomCoef_[count++] = a[j];
        }
      }
      kernels.combineRows(dictionary, d_, atomIndex_.data(), atomCoef_.data(), count, atomSum_.data(), d_);
      const float* b = statsB_.data() + k * d_;
      const float inverse = static_cast<float>(1.0 / akk);
      double norm = 0.0;
      for (int64_t i = 0; i < d_; ++i) {
        atom[i] += (b[i] - atomSum_[i]) * inverse;
        norm += static_cast<double>(atom[i]) * atom[i];
      }
      if (norm > 0.0) {
        const float scale = static_cast<float>(1.0 / std::sqrt(norm));
        for (int64_t i = 0; i < d_; ++i) atom[i] *= scale;
      } else {
        redraw = true;
      }
    }
    if (redraw) {
      redrawAtom(k, x, rows, rng, dictionary);
      ++redrawn;
    }
  }
  return redrawn;
}

// scikit-learn's replacement of an unused atom: a random row of the batch plus Gaussian noise
// of 1% of that row's standard deviation (to keep the coding well conditioned), normalised.
void DictionaryLearning::redrawAtom(int64_t k, const float* x, int64_t rows, Rng& rng, float* dictionary) {
  const int64_t r = std::min<int64_t>(rows - 1, static_cast<int64_t>(rng.uniform() * static_cast<double>(rows)));
  const float* source = x + r * d_;
  double mean = 0.0, squares = 0.0;
  for (int64_t i = 0; i < d_; ++i) mean += source[i];
  mean /= static_cast<double>(d_);
  for (int64_t i = 0; i < d_; ++i) squares += (source[i] - mean) * (source[i] - mean);
  const double deviation = std::sqrt(squares / static_cast<double>(d_));
  const double noise = 0.01 * (deviation > 0.0 ? deviation : 1.0);
  float* atom = dictionary + k * d_;
  double norm = 0.0;
  for (int64_t i = 0; i < d_; ++i) {
    const double value = source[i] + noise * rng.normal();
    atom[i] = static_cast<float>(value);
    norm += value * value;
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(norm));
  for (int64_t i = 0; i < d_; ++i) atom[i] *= scale;
  redrawnAt_[k] = steps_;
}

}  // namespace saekit::cpu
