// Online dictionary learning's host-side half (core/fista.h describes the algorithm): the
// statistics A and B, the block coordinate descent over the atoms with the redraw of unused
// ones, and the codes kept under row ids for warm starts. The CPU backend and the CUDA backend
// (which codes on the GPU) share it, so that the same codes give the same dictionary on both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/buffer.h"
#include "../core/fista.h"
#include "../core/rng.h"
#include "../core/thread_pool.h"
#include "kernels.h"
#include "model_support.h"

namespace saekit::cpu {

// Sums the per-row outcomes of a batch into its FistaStepStats.
class StepTotals {
 public:
  void add(double objective, double squaredError, double l1, int64_t iterations);
  FistaStepStats finish(int64_t rows, int64_t d, int64_t nonzeros) const;

 private:
  double loss_ = 0, squared_ = 0, l1_ = 0, iterations_ = 0;
  int64_t maxIterations_ = 0;
};

class DictionaryLearning {
 public:
  DictionaryLearning(int64_t m, int64_t d, uint64_t seed);

  int64_t steps() const { return steps_; }
  size_t bytes() const;

  // Throws a RangeError for a negative row id, or one whose warm-start slot (one per id up to
  // the largest) would need more memory than is available.
  void checkRowIds(const int32_t* rowIds, int64_t rows) const;

  // Writes the codes row `id` got in an earlier step (less the atoms redrawn since: their old
  // coefficients say nothing about the new atom) to index/value [m] and returns their count;
  // 0 for an id never seen.
  int64_t warmStart(int32_t id, int32_t* index, float* value) const;
  // Keeps each row's codes of this step under its id (rowIds null: keeps nothing). Before
  // update(), which ends the step the codes are stamped with.
  void keepCodes(const int32_t* rowIds, int64_t rows, const CodeRows& codes);
  void forgetCodes();

  // Adds the batch x [rows, d] and its codes to A and B, updates the atoms of `dictionary`
  // [m, d] in place, and ends the step. Returns the number of atoms redrawn.
  int64_t update(ThreadPool& pool, const Kernels& kernels, const float* x, int64_t rows, const CodeRows& codes,
                 float* dictionary);

 private:
  struct KeptCodes {
    Buffer<int32_t> indices;
    Buffer<float> values;
    int64_t step = -1;  // the step whose dictionary gave them; -1 when none are kept
  };

  void updateStatistics(ThreadPool& pool, const Kernels& kernels, const float* x, int64_t rows,
                        const CodeRows& codes);
  int64_t updateAtoms(const Kernels& kernels, const float* x, int64_t rows, float* dictionary);
  void redrawAtom(int64_t k, const float* x, int64_t rows, Rng& rng, float* dictionary);

  int64_t m_;
  int64_t d_;
  uint64_t seed_;
  int64_t steps_ = 0;
  Buffer<float> statsA_;       // A [m, m]
  Buffer<float> statsB_;       // B [m, d]: row k is sum of z_k x
  Buffer<int64_t> redrawnAt_;  // [m] the step in which each atom was last redrawn, or -1
  std::vector<KeptCodes> kept_;  // by row id
  Buffer<int64_t> cscStart_;   // the batch's codes by atom
  Buffer<int64_t> cscFill_;
  Buffer<int32_t> cscRow_;
  Buffer<float> cscValue_;
  Buffer<int32_t> atomIndex_;  // scratch for the atom update
  Buffer<float> atomCoef_;
  Buffer<float> atomSum_;
};

}  // namespace saekit::cpu
