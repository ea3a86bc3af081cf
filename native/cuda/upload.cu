#include "upload.cuh"

#include <algorithm>
#include <cstring>

#include "common.cuh"

namespace saekit::cuda {
namespace {

constexpr size_t kSlotBytes = size_t{4} << 20;  // one pinned staging slot
constexpr int kSlots = 2;

}  // namespace

Streams::Streams() {
  SAEKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking));
  SAEKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking));
  for (cudaEvent_t& event : staged) SAEKIT_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
}

Streams::~Streams() {
  // Errors are ignored: a destructor must not throw, and at process exit the runtime may
  // already be gone.
  if (compute != nullptr) cudaStreamSynchronize(compute);
  if (copy != nullptr) cudaStreamSynchronize(copy);
  for (cudaEvent_t event : staged) {
    if (event != nullptr) cudaEventDestroy(event);
  }
  if (copy != nullptr) cudaStreamDestroy(copy);
  if (compute != nullptr) cudaStreamDestroy(compute);
  cudaGetLastError();
}

void StagedUpload::run(Streams& streams, const void* host, int64_t rows, size_t rowBytes, void* to,
                       const std::function<void(int64_t, int64_t)>& onChunk, int64_t rowMultiple) {
  if (rows <= 0 || rowBytes == 0) return;
  // Normally idle already; after a call that threw part-way, its queued work must not still be
  // reading what the copies are about to overwrite.
  SAEKIT_CUDA_CHECK(cudaStreamSynchronize(streams.compute));
  const size_t slotBytes = std::max(kSlotBytes, rowBytes);
  int64_t perChunk = static_cast<int64_t>(slotBytes / rowBytes);
  if (perChunk > rowMultiple) perChunk -= perChunk % rowMultiple;
  staging_.resize(slotBytes * kSlots);
  const auto* from = static_cast<const unsigned char*>(host);
  auto* dest = static_cast<unsigned char*>(to);
  int chunk = 0;
  for (int64_t row0 = 0; row0 < rows; row0 += perChunk, ++chunk) {
    const int64_t count = std::min(perChunk, rows - row0);
    const size_t bytes = static_cast<size_t>(count) * rowBytes;
    const size_t offset = static_cast<size_t>(row0) * rowBytes;
    const int slot = chunk % kSlots;
    unsigned char* pinned = staging_.data() + static_cast<size_t>(slot) * slotBytes;
    // The slot's previous copy has to finish before the slot is refilled.
    SAEKIT_CUDA_CHECK(cudaEventSynchronize(streams.staged[slot]));
    std::memcpy(pinned, from + offset, bytes);
    SAEKIT_CUDA_CHECK(cudaMemcpyAsync(dest + offset, pinned, bytes, cudaMemcpyHostToDevice, streams.copy));
    SAEKIT_CUDA_CHECK(cudaEventRecord(streams.staged[slot], streams.copy));
    SAEKIT_CUDA_CHECK(cudaStreamWaitEvent(streams.compute, streams.staged[slot], 0));
    if (onChunk) onChunk(row0, count);
  }
}

}  // namespace saekit::cuda
