// The sparse activations of the encoder epilogue. Each turns one row of pre-activations
// (before the bias) into the active units, in increasing index order, as the rest of the
// step consumes them.
#pragma once

#include <cstdint>

#include "../core/buffer.h"
#include "kernels.h"

namespace saekit::cpu {

struct TopkCandidate {
  float value;
  int32_t index;
};

struct TopkScratch {
  Buffer<TopkCandidate> heap;
  size_t bytes() const { return heap.bytes(); }
};

// The k largest values of pre + bias that are also positive (TopK followed by ReLU, as
// openai/sparse_autoencoder does), written to indices/values in increasing index order. Ties
// at the k-th value go to the lower index, so the result is deterministic. Returns the count.
// One pass: a heap of the best k so far, and the kernels' vectorised scan for the next value
// above the heap's worst (for k much smaller than n, most of the row is only compared).
int64_t topkExtract(const Kernels& kernels, const float* pre, const float* bias, int64_t n, int64_t k,
                    int32_t* indices, float* values, TopkScratch& scratch);

// Keeps the `keep` largest of `count` values (ties to the earlier position) and compacts
// indices/values in place, preserving order; rowEnd (cumulative, one per row) is updated.
// Returns the smallest kept value (or 0 when nothing is kept). BatchTopK's batch-wide step.
float keepLargest(int32_t* indices, float* values, int64_t* rowEnd, int64_t rows, int64_t keep, Buffer<float>& scratch);

}  // namespace saekit::cpu
