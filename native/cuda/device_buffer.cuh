// GPU memory and pinned host memory that free themselves (RAII), grow on demand and never
// shrink: scratch is sized by the largest batch seen, like the CPU backend's Buffer. Growing
// does not keep the old contents (scratch is rewritten every call); parameters are sized once.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>

#include "common.cuh"

namespace saekit::cuda {

template <class T>
class DeviceBuffer {
 public:
  // `what` names the buffer in an out-of-memory error.
  explicit DeviceBuffer(const char* what = "scratch") : what_(what) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { release(); }

  // At least `count` elements; the contents are undefined after growing.
  void resize(size_t count) {
    if (count > capacity_) {
      // A quarter of headroom so that slowly growing batches do not reallocate every call (each
      // cudaFree and cudaMalloc waits for the whole GPU). Worked out before release() forgets
      // the old capacity.
      const size_t grown = capacity_ == 0 ? count : std::max(count, capacity_ + capacity_ / 4);
      release();
      const size_t bytes = grown * sizeof(T);
      if (bytes / sizeof(T) != grown) throwOutOfMemory(static_cast<size_t>(-1), what_);
      void* fresh = nullptr;
      const cudaError_t status = cudaMalloc(&fresh, bytes);
      if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // not sticky: clear it so later calls do not see it
        throwOutOfMemory(bytes, what_);
      }
      SAEKIT_CUDA_CHECK(status);
      data_ = static_cast<T*>(fresh);
      capacity_ = grown;
    }
    size_ = count;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t bytes() const { return capacity_ * sizeof(T); }

  void swap(DeviceBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
    std::swap(what_, other.what_);
  }

 private:
  void release() {
    // cudaFree fails harmlessly when the runtime is already unloading at process exit.
    if (data_ != nullptr) cudaFree(data_);
    data_ = nullptr;
    capacity_ = 0;
    size_ = 0;
  }

  const char* what_;
  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Page-locked host memory: the only kind cudaMemcpyAsync copies without blocking.
template <class T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() {
    if (data_ != nullptr) cudaFreeHost(data_);
  }

  void resize(size_t count) {
    if (count <= capacity_) return;
    if (data_ != nullptr) cudaFreeHost(data_);
    data_ = nullptr;
    capacity_ = 0;
    void* fresh = nullptr;
    const cudaError_t status = cudaHostAlloc(&fresh, count * sizeof(T), cudaHostAllocDefault);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throwOutOfMemory(count * sizeof(T), "pinned host staging memory");
    }
    SAEKIT_CUDA_CHECK(status);
    data_ = static_cast<T*>(fresh);
    capacity_ = count;
  }

  T* data() { return data_; }
  size_t bytes() const { return capacity_ * sizeof(T); }

 private:
  T* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace saekit::cuda
