#include "activation.h"

#include <algorithm>

namespace saekit::cpu {

int64_t topkExtract(const float* pre, const float* bias, int64_t n, int64_t k, int32_t* indices, float* values,
                    TopkScratch& scratch) {
  if (k <= 0 || n == 0) return 0;
  scratch.order.resize(static_cast<size_t>(n));
  scratch.values.resize(static_cast<size_t>(n));
  int32_t* order = scratch.order.data();
  float* z = scratch.values.data();
  for (int64_t j = 0; j < n; ++j) {
    z[j] = pre[j] + bias[j];
    order[j] = static_cast<int32_t>(j);
  }
  const auto larger = [z](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
  const int64_t take = std::min(k, n);
  if (take < n) std::nth_element(order, order + take, order + n, larger);
  std::sort(order, order + take);
  int64_t count = 0;
  for (int64_t i = 0; i < take; ++i) {
    const int32_t j = order[i];
    if (z[j] > 0.0f) {
      indices[count] = j;
      values[count] = z[j];
      ++count;
    }
  }
  return count;
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
