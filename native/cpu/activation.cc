#include "activation.h"

#include <algorithm>

namespace saekit::cpu {

int64_t topkExtract(const Kernels& kernels, const float* pre, const float* bias, int64_t n, int64_t k,
                    int32_t* indices, float* values, TopkScratch& scratch) {
  if (k <= 0 || n == 0) return 0;
  const int64_t capacity = std::min(k, n);
  scratch.heap.resize(static_cast<size_t>(capacity));
  TopkCandidate* heap = scratch.heap.data();
  // better(a, b): a ranks before b (larger, or equal at a lower index). As the heap's order,
  // it keeps the candidate that ranks last on top.
  const auto better = [](const TopkCandidate& a, const TopkCandidate& b) {
    return a.value > b.value || (a.value == b.value && a.index < b.index);
  };
  int64_t size = 0;
  // Only positive values are kept; once the heap is full, only a value above its worst can
  // enter (an equal value comes later in the row, so at a higher index, and ranks after it).
  float threshold = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    j += kernels.firstAbove(pre + j, bias + j, n - j, threshold);
    if (j >= n) break;
    const TopkCandidate candidate{pre[j] + bias[j], static_cast<int32_t>(j)};
    if (size < capacity) {
      heap[size++] = candidate;
      std::push_heap(heap, heap + size, better);
    } else {
      std::pop_heap(heap, heap + size, better);
      heap[size - 1] = candidate;
      std::push_heap(heap, heap + size, better);
    }
    if (size == capacity) threshold = heap[0].value;
  }
  std::sort(heap, heap + size, [](const TopkCandidate& a, const TopkCandidate& b) { return a.index < b.index; });
  for (int64_t i = 0; i < size; ++i) {
    indices[i] = heap[i].index;
    values[i] = heap[i].value;
  }
  return size;
}

float keepLargest(int32_t* indices, float* values, int64_t* rowEnd, int64_t rows, int64_t keep, Buffer<float>& scratch) {
  const int64_t count = rows > 0 ? rowEnd[rows - 1] : 0;
  if (keep <= 0) {
    for (int64_t r = 0; r < rows; ++r) rowEnd[r] = 0;
    return 0.0f;
  }
  if (keep >= count) {
    float smallest = 0.0f;
    for (int64_t e = 0; e < count; ++e) smallest = e == 0 ? values[e] : std::min(smallest, values[e]);
    return smallest;
  }
  // The keep-th largest value t: everything above it stays, and as many values equal to t as
  // are needed, earliest first.
  scratch.resize(static_cast<size_t>(count));
  std::copy(values, values + count, scratch.data());
  std::nth_element(scratch.data(), scratch.data() + (keep - 1), scratch.data() + count, std::greater<float>());
  const float threshold = scratch[keep - 1];
  int64_t above = 0;
  for (int64_t e = 0; e < count; ++e) above += values[e] > threshold;
  int64_t equalToKeep = keep - above;
  int64_t out = 0;
  int64_t e = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (; e < rowEnd[r]; ++e) {
      const bool kept = values[e] > threshold || (values[e] == threshold && equalToKeep-- > 0);
      if (kept) {
        indices[out] = indices[e];
        values[out] = values[e];
        ++out;
      }
    }
    rowEnd[r] = out;
  }
  return threshold;
}

}  // namespace saekit::cpu
