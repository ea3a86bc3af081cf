// Copying a model's input to the GPU so that computing on it can start before all of it has
// arrived: rows go through two pinned staging slots on a copy stream; after each chunk the
// compute stream waits for it and the caller may queue work on those rows. The host fills one
// slot while the other is being copied, and the GPU copies a chunk while it computes on the one
// before.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>

#include "device_buffer.cuh"

namespace saekit::cuda {

// A stream and the two staging events a model owns; created and destroyed with it.
class Streams {
 public:
  Streams();
  ~Streams();
  Streams(const Streams&) = delete;
  Streams& operator=(const Streams&) = delete;

  cudaStream_t compute = nullptr;  // all computation, in order
  cudaStream_t copy = nullptr;     // host-to-device copies of inputs
  cudaEvent_t staged[2] = {};      // the last copy out of each staging slot
};

class StagedUpload {
 public:
  // Copies `rows` rows of rowBytes each from host to the device array `to`, in chunks of
  // whole multiples of `rowMultiple` rows where a slot holds more; onChunk(firstRow, rowCount)
  // runs after each chunk is queued (it may be empty). First waits for the compute stream, so
  // that nothing still queued there reads what is about to be overwritten.
  void run(Streams& streams, const void* host, int64_t rows, size_t rowBytes, void* to,
           const std::function<void(int64_t, int64_t)>& onChunk, int64_t rowMultiple = 1);
  size_t bytes() const { return staging_.bytes(); }

 private:
  PinnedBuffer<unsigned char> staging_;
};

}  // namespace saekit::cuda
