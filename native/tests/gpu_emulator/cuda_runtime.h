// A stand-in for the CUDA runtime header when kernels are compiled by the host compiler
// (native/tests/cuda_emulated_tests.cc, with -I native/tests/gpu_emulator): the CUDA
// qualifiers become plain C++, and a kernel runs as one std::thread per CUDA thread, a block
// at a time, with __syncthreads a barrier across the block and warp-wide intrinsics
// (__ballot_sync, __shfl_sync) rendezvous of the 32 threads of a warp. Slow, but it runs the
// kernel's own code, under ThreadSanitizer or AddressSanitizer when built so: a missing
// barrier is a data race, a read past an array an ASan report. Only what saekit's kernels use.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <climits>
#endif

#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __shared__
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

using cudaError_t = int;
using cudaStream_t = struct EmulatedStream*;
constexpr cudaError_t cudaSuccess = 0;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
cudaError_t cudaSetDevice(int device);  // declared for common.cuh; never called

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }

namespace saekit::emulator {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "gpu emulator: %s\n", what);
  std::abort();
}

// A reusable barrier for a fixed number of threads. Threads that wait sleep on the
// generation word (a futex on Linux: waking a warp costs one system call, not 31 contended
// mutex acquisitions).
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void arriveAndWait() {
    const uint32_t generation = generation_.load(std::memory_order_acquire);
    if (waiting_.fetch_add(1, std::memory_order_acq_rel) + 1 == count_) {
      waiting_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_acq_rel);
      wake();
      return;
    }
    while (generation_.load(std::memory_order_acquire) == generation) sleep(generation);
  }

 private:
#if defined(__linux__)
  void sleep(uint32_t generation) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&generation_), FUTEX_WAIT_PRIVATE, generation, nullptr, nullptr, 0);
  }
  void wake() {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&generation_), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
  }
#else
  void sleep(uint32_t) { std::this_thread::yield(); }
  void wake() {}
#endif

  const int count_;
  std::atomic<int> waiting_{0};
  std::atomic<uint32_t> generation_{0};
};

// What the threads of one block share.
struct Block {
  Block(int threads, size_t sharedBytes)
      : sync(threads), shared(sharedBytes + 128, 0xff), exchange(2 * static_cast<size_t>(threads)) {
    for (int w = 0; w < (threads + 31) / 32; ++w) warps.push_back(std::make_unique<Barrier>(32));
    const uintptr_t at = reinterpret_cast<uintptr_t>(shared.data());
    sharedBase = shared.data() + (128 - at % 128) % 128;  // NaN bytes until written
    sharedBytes_ = sharedBytes;
  }
  Barrier sync;
  std::vector<std::unique_ptr<Barrier>> warps;
  std::vector<unsigned char> shared;
  unsigned char* sharedBase = nullptr;
  size_t sharedBytes_ = 0;
  // Two slots per thread for warp-wide exchanges (a value, a predicate, an address, fragments),
  // used in turn: a lane may write the next exchange's slot while others still read this one's.
  struct Slot {
    uint64_t words[8];
  };
  std::vector<Slot> exchange;
};

// Each emulated CUDA thread's identity, and its cp.async groups (ptx.h).
struct ThreadState {
  uint3 threadIdx{0, 0, 0};
  uint3 blockIdx{0, 0, 0};
  dim3 blockDim, gridDim;
  Block* block = nullptr;
  struct PendingCopy {
    uint32_t to;
    const void* from;
    int bytes, validBytes;
  };
  std::vector<PendingCopy> open;
  std::vector<std::vector<PendingCopy>> committed;
  unsigned exchanges = 0;  // warp-wide exchanges so far: the same count in every lane of a warp
};

inline thread_local ThreadState self;

inline int lane() { return static_cast<int>(self.threadIdx.x & 31); }

// A warp-wide exchange: each lane writes its slot (`mine`), the warp meets (`meet`), then each
// lane reads any lane's slot of this exchange (`of`). One barrier per exchange: the next one
// writes the other set of slots, and the one after can only begin once every lane has passed
// the next one's barrier, i.e. finished reading this one.
class Exchange {
 public:
  Exchange() : base_((self.exchanges++ & 1u) * self.blockDim.x + (self.threadIdx.x & ~31u)) {}
  Block::Slot& mine() { return self.block->exchange[base_ + (self.threadIdx.x & 31u)]; }
  void meet() { self.block->warps[self.threadIdx.x >> 5]->arriveAndWait(); }
  const Block::Slot& of(int laneInWarp) const { return self.block->exchange[base_ + static_cast<unsigned>(laneInWarp)]; }

 private:
  unsigned base_;
};

// Runs `body` as a kernel over `grid` blocks of blockDim.x threads (one dimension), a block at a
// time, with `sharedBytes` of dynamic shared memory per block.
inline void launch(dim3 grid, unsigned threads, size_t sharedBytes, const std::function<void()>& body) {
  if (threads % 32 != 0) fail("blocks of whole warps only");
  for (unsigned by = 0; by < grid.y; ++by) {
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      Block block(static_cast<int>(threads), sharedBytes);
      std::vector<std::thread> team;
      team.reserve(threads);
      for (unsigned t = 0; t < threads; ++t) {
        team.emplace_back([&, t] {
          self = ThreadState{};
          self.threadIdx = {t, 0, 0};
          self.blockIdx = {bx, by, 0};
          self.blockDim = dim3(threads);
          self.gridDim = grid;
          self.block = &block;
          body();
          if (!self.open.empty() || !self.committed.empty()) fail("a thread ended with cp.async copies never waited for");
        });
      }
      for (auto& thread : team) thread.join();
    }
  }
}

}  // namespace saekit::emulator

#define threadIdx (::saekit::emulator::self.threadIdx)
#define blockIdx (::saekit::emulator::self.blockIdx)
#define blockDim (::saekit::emulator::self.blockDim)
#define gridDim (::saekit::emulator::self.gridDim)

inline void __syncthreads() { saekit::emulator::self.block->sync.arriveAndWait(); }

inline unsigned __ballot_sync(unsigned mask, bool predicate) {
  using namespace saekit::emulator;
  if (mask != 0xffffffffu) fail("__ballot_sync: only full-warp masks are emulated");
  Exchange exchange;
  exchange.mine().words[0] = predicate ? 1 : 0;
  exchange.meet();
  unsigned result = 0;
  for (int l = 0; l < 32; ++l) result |= static_cast<unsigned>(exchange.of(l).words[0]) << l;
  return result;
}

template <class T>
T __shfl_sync(unsigned mask, T value, int source) {
  using namespace saekit::emulator;
  static_assert(sizeof(T) <= sizeof(uint64_t), "one word");
  if (mask != 0xffffffffu) fail("__shfl_sync: only full-warp masks are emulated");
  Exchange exchange;
  std::memcpy(exchange.mine().words, &value, sizeof(T));
  exchange.meet();
  T result;
  std::memcpy(&result, exchange.of(source & 31).words, sizeof(T));
  return result;
}

inline int __popc(unsigned x) { return __builtin_popcount(x); }

template <class T>
T atomicAdd(T* address, T value) {
  return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}

inline unsigned __float_as_uint(float x) {
  unsigned u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
