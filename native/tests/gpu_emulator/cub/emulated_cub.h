// The parts of CUB that saekit's CUDA code uses, for the GPU emulator: the device-wide scan and
// sorts run on the host when called (a first call with no temporary storage asks for its size,
// as CUB's do; a stream of another device than the current one fails, as a launch would), and
// BlockScan is a collective of the emulated block.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace cub {

struct DeviceScan {
  template <class In, class Out, class Count>
  static cudaError_t ExclusiveSum(void* temp, size_t& bytes, In in, Out out, Count count, cudaStream_t stream = nullptr) {
    if (temp == nullptr) {
      bytes = 16;
      return cudaSuccess;
    }
    if (!saekit::emulator::issueOn(stream)) return cudaErrorInvalidResourceHandle;
    using T = typename std::remove_reference<decltype(out[0])>::type;
    T sum = T(0);
    for (Count i = 0; i < count; ++i) {
      const T value = static_cast<T>(in[i]);
      out[i] = sum;
      sum += value;
    }
    return cudaSuccess;
  }
};

namespace emulated {
// A stable sort of (key, value) pairs [0, n) by `before`.
template <class Key, class Value, class Before>
void sortPairs(const Key* keysIn, Key* keysOut, const Value* valuesIn, Value* valuesOut, int64_t n, Before before) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return before(keysIn[a], keysIn[b]); });
  std::vector<Key> keys(static_cast<size_t>(n));
  std::vector<Value> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    keys[i] = keysIn[order[i]];
    values[i] = valuesIn[order[i]];
  }
  std::copy(keys.begin(), keys.end(), keysOut);
  std::copy(values.begin(), values.end(), valuesOut);
}
}  // namespace emulated

struct DeviceRadixSort {
  template <class Key, class Value, class Count>
  static cudaError_t SortPairs(void* temp, size_t& bytes, const Key* keysIn, Key* keysOut, const Value* valuesIn,
                               Value* valuesOut, Count n, int beginBit = 0, int endBit = 8 * sizeof(Key),
                               cudaStream_t stream = nullptr) {
    if (temp == nullptr) {
      bytes = 16;
      return cudaSuccess;
    }
    if (!saekit::emulator::issueOn(stream)) return cudaErrorInvalidResourceHandle;
    const auto bits = [&](Key k) {
      const uint64_t u = static_cast<uint64_t>(k);
      return endBit >= 64 ? u >> beginBit : (u & ((uint64_t{1} << endBit) - 1)) >> beginBit;
    };
    emulated::sortPairs(keysIn, keysOut, valuesIn, valuesOut, static_cast<int64_t>(n),
                        [&](Key a, Key b) { return bits(a) < bits(b); });
    return cudaSuccess;
  }

  // Floats only here (all 32 bits): descending by value.
  template <class Value, class Count>
  static cudaError_t SortPairsDescending(void* temp, size_t& bytes, const float* keysIn, float* keysOut,
                                         const Value* valuesIn, Value* valuesOut, Count n, int = 0, int = 32,
                                         cudaStream_t stream = nullptr) {
    if (temp == nullptr) {
      bytes = 16;
      return cudaSuccess;
    }
    if (!saekit::emulator::issueOn(stream)) return cudaErrorInvalidResourceHandle;
    emulated::sortPairs(keysIn, keysOut, valuesIn, valuesOut, static_cast<int64_t>(n),
                        [](float a, float b) { return a > b; });
    return cudaSuccess;
  }
};

struct DeviceSegmentedSort {
  template <class Value, class Count, class Segments, class Offsets>
  static cudaError_t StableSortPairsDescending(void* temp, size_t& bytes, const float* keysIn, float* keysOut,
                                               const Value* valuesIn, Value* valuesOut, Count, Segments segments,
                                               Offsets begin, Offsets end, cudaStream_t stream = nullptr) {
    if (temp == nullptr) {
      bytes = 16;
      return cudaSuccess;
    }
    if (!saekit::emulator::issueOn(stream)) return cudaErrorInvalidResourceHandle;
    for (Segments s = 0; s < segments; ++s) {
      const int64_t b = static_cast<int64_t>(begin[s]), e = static_cast<int64_t>(end[s]);
      emulated::sortPairs(keysIn + b, keysOut + b, valuesIn + b, valuesOut + b, e - b,
                          [](float x, float y) { return x > y; });
    }
    return cudaSuccess;
  }
};

template <class T, int kThreads>
class BlockScan {
 public:
  struct TempStorage {
    T values[kThreads];
  };
  explicit BlockScan(TempStorage& storage) : storage_(storage) {}

  void ExclusiveSum(T input, T& output, T& aggregate) {
    const unsigned me = saekit::emulator::self().linear;
    if (saekit::emulator::scheduler.block->threads != kThreads) saekit::emulator::fail("BlockScan: block size");
    storage_.values[me] = input;
    __syncthreads();
    T before = T(0), total = T(0);
    for (unsigned t = 0; t < static_cast<unsigned>(kThreads); ++t) {
      if (t < me) before += storage_.values[t];
      total += storage_.values[t];
    }
    __syncthreads();
    output = before;
    aggregate = total;
  }

  void ExclusiveSum(T input, T& output) {
    T aggregate;
    ExclusiveSum(input, output, aggregate);
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
