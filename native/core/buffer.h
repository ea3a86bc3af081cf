// A growable array of trivially copyable values that, unlike std::vector, does not
// initialise what it allocates: scratch space is rewritten every step, so zero-filling it
// would only cost memory bandwidth. Storage is 64-byte aligned for SIMD loads.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace saekit {

template <class T>
class Buffer {
  static_assert(std::is_trivially_copyable<T>::value, "Buffer holds plain values only");

 public:
  Buffer() = default;
  explicit Buffer(size_t size) { resize(size); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept { swap(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    swap(other);
    return *this;
  }
  ~Buffer() { std::free(data_); }

  // Grows capacity to at least `size` (keeping the contents) and sets the size.
  void resize(size_t size) {
    reserve(size);
    size_ = size;
  }

  void reserve(size_t capacity) {
    if (capacity <= capacity_) return;
    size_t grown = capacity_ + capacity_ / 2;
    if (grown < capacity) grown = capacity;
    size_t bytes = (grown * sizeof(T) + 63) / 64 * 64;
    if (bytes / sizeof(T) < grown) throw std::bad_alloc();
    void* fresh = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (fresh == nullptr) throw std::bad_alloc();
    if (size_ > 0) std::memcpy(fresh, data_, size_ * sizeof(T));
    std::free(data_);
    data_ = static_cast<T*>(fresh);
    capacity_ = grown;
  }

  void zero() {
    if (size_ > 0) std::memset(data_, 0, size_ * sizeof(T));
  }

  void clear() { size_ = 0; }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  size_t bytes() const { return capacity_ * sizeof(T); }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  void swap(Buffer& other) noexcept {
    T* d = data_;
    data_ = other.data_;
    other.data_ = d;
    size_t s = size_;
    size_ = other.size_;
    other.size_ = s;
    size_t c = capacity_;
    capacity_ = other.capacity_;
    other.capacity_ = c;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace saekit
