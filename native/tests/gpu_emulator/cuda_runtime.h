// A stand-in for the CUDA runtime when saekit's CUDA sources are compiled by the host compiler
// (native/tests/cuda_emulated_tests.cc, and the emulated build of native/cuda with cuda_tests:
// -I native/tests/gpu_emulator, launches rewritten by translate.py). The CUDA qualifiers become
// plain C++; a kernel runs a block at a time on the calling thread, each CUDA thread a fiber
// with its own stack, switched only at __syncthreads and at warp-wide operations (shuffles,
// ballots, and ptx.h's ldmatrix and mma), which are barriers of the block or of the warp. Each
// warp runs as far as it can before the next (the warps in forward, then backward order), so
// a barrier missing between warps shows as wrong data, and a barrier that not every thread
// reaches is reported, not hung on. The runtime API (cuda_runtime_api.h): device memory is
// host memory, and work runs when it is issued, except host-to-device copies on a stream,
// which wait until something needs them done. Only what saekit's CUDA code uses is here.
#pragma once

#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define SAEKIT_EMULATOR_ASAN 1
#endif

#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
// One block runs at a time on a thread, so a function-local static per OS thread is the block's.
#define __shared__ static thread_local
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

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
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

namespace saekit::emulator {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "gpu emulator: %s\n", what);
  std::abort();
}

// Each CUDA thread's identity, its cp.async groups (ptx.h), and its count of warp-wide
// exchanges (the same in every lane of a warp, as the lanes run the same code).
struct ThreadState {
  uint3 threadIdx{0, 0, 0};
  uint3 blockIdx{0, 0, 0};
  dim3 blockDim, gridDim;
  unsigned linear = 0;  // threadIdx flattened, x fastest: lane = linear % 32
  struct PendingCopy {
    uint32_t to;
    const void* from;
    int bytes, validBytes;
  };
  std::vector<PendingCopy> open;
  std::vector<std::vector<PendingCopy>> committed;
  unsigned exchanges = 0;
};

// A fiber starts on its own stack through makecontext/setcontext and afterwards switches with
// GCC's __builtin_setjmp/__builtin_longjmp, which save and restore only the stack and frame
// pointers and the resume address (the compiler keeps no other register live across them):
// unlike swapcontext they make no system call, and unlike libc's _longjmp they do not walk the
// thread's cleanup handlers on every switch (a third of the emulator's time). Under
// AddressSanitizer, libc's pair, which it intercepts.
#if SAEKIT_EMULATOR_ASAN
using JumpBuffer = jmp_buf;
#define SAEKIT_EMULATOR_SETJMP(buffer) _setjmp(buffer)
#define SAEKIT_EMULATOR_LONGJMP(buffer) _longjmp(buffer, 1)
#else
using JumpBuffer = void* [5];
// GCC requires __builtin_longjmp to be called from another function than __builtin_setjmp.
[[noreturn]] __attribute__((noinline)) inline void longJump(void** buffer) { __builtin_longjmp(buffer, 1); }
#define SAEKIT_EMULATOR_SETJMP(buffer) __builtin_setjmp(buffer)
#define SAEKIT_EMULATOR_LONGJMP(buffer) longJump(buffer)
#endif
struct Fiber {
  ucontext_t context;
  JumpBuffer jump;
  bool started = false;
  std::unique_ptr<char[]> stack;
  ThreadState state;
  bool done = false;
  int waitingOn = -1;  // a barrier: 0 the block's, 1 + w warp w's
  void* fakeStack = nullptr;  // AddressSanitizer's, while switched away
};

// The running block's shared state.
struct Block {
  unsigned threads = 0;
  std::vector<Fiber>* fibers = nullptr;
  std::vector<int> arrived;  // per barrier
  std::vector<unsigned char> shared;
  unsigned char* sharedBase = nullptr;
  size_t sharedSize = 0;
  // Two slots per thread for warp-wide exchanges, used in turn (see Exchange).
  struct Slot {
    uint64_t words[8];
  };
  std::vector<Slot> exchange;
  std::function<void()> body;
};

// Plain data, so that the compiler reaches the thread_local without an initialisation check on
// every access (it is read at every switch and every threadIdx).
struct Scheduler {
  JumpBuffer mainJump{};
  Fiber* current = nullptr;
  Block* block = nullptr;
#if SAEKIT_EMULATOR_ASAN
  void* fakeStack = nullptr;
  const void* mainStackBottom = nullptr;
  size_t mainStackSize = 0;
#endif
};

inline thread_local Scheduler scheduler;
inline thread_local std::vector<Fiber> fiberPool;  // reused from launch to launch
constexpr size_t kFiberStackBytes = 256 * 1024;

inline ThreadState& self() { return scheduler.current->state; }

inline void switchToMain() {
  Fiber* fiber = scheduler.current;
  if (SAEKIT_EMULATOR_SETJMP(fiber->jump) == 0) {
#if SAEKIT_EMULATOR_ASAN
    __sanitizer_start_switch_fiber(&fiber->fakeStack, scheduler.mainStackBottom, scheduler.mainStackSize);
#endif
    SAEKIT_EMULATOR_LONGJMP(scheduler.mainJump);
  }
#if SAEKIT_EMULATOR_ASAN
  __sanitizer_finish_switch_fiber(fiber->fakeStack, nullptr, nullptr);
#endif
}

// Arrives at barrier `id` of the running block (0: the block's, 1 + w: warp w's), which
// `expected` threads must reach; returns once they all have.
inline void arriveAndWait(int id, int expected) {
  Block& block = *scheduler.block;
  if (++block.arrived[static_cast<size_t>(id)] == expected) {
    block.arrived[static_cast<size_t>(id)] = 0;
    Fiber* const first = block.fibers->data() + (id == 0 ? 0 : 32 * (id - 1));
    Fiber* const end = id == 0 ? first + block.threads : first + 32;
    for (Fiber* fiber = first; fiber != end; ++fiber) {
      if (fiber->waitingOn == id) fiber->waitingOn = -1;
    }
    return;
  }
  scheduler.current->waitingOn = id;
  switchToMain();
}

inline int lane() { return static_cast<int>(self().linear & 31u); }

// The running thread's warp barrier: returns once all 32 lanes have arrived.
inline void arriveAtWarpBarrier() { arriveAndWait(1 + static_cast<int>(self().linear >> 5), 32); }

// A warp-wide exchange: each lane writes its slot (`mine`), the warp meets (`meet`), then each
// lane reads any lane's slot of this exchange (`of`). One barrier per exchange: the next one
// writes the other set of slots, and the one after can only begin once every lane has passed
// the next one's barrier, i.e. finished reading this one.
class Exchange {
 public:
  Exchange() : base_((self().exchanges++ & 1u) * scheduler.block->threads + (self().linear & ~31u)) {}
  Block::Slot& mine() { return scheduler.block->exchange[base_ + (self().linear & 31u)]; }
  void meet() { arriveAtWarpBarrier(); }
  const Block::Slot& of(int laneInWarp) const {
    return scheduler.block->exchange[base_ + static_cast<unsigned>(laneInWarp)];
  }

 private:
  unsigned base_;
};

[[noreturn]] inline void fiberEntry() {
#if SAEKIT_EMULATOR_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &scheduler.mainStackBottom, &scheduler.mainStackSize);
#endif
  scheduler.block->body();
  ThreadState& state = self();
  if (!state.open.empty() || !state.committed.empty()) fail("a thread ended with cp.async copies never waited for");
  scheduler.current->done = true;
#if SAEKIT_EMULATOR_ASAN
  __sanitizer_start_switch_fiber(nullptr, scheduler.mainStackBottom, scheduler.mainStackSize);
#endif
  SAEKIT_EMULATOR_LONGJMP(scheduler.mainJump);  // the stack is abandoned; the next block starts it afresh
}

// Runs the fiber until it waits at a barrier or ends.
inline void resume(Fiber& fiber) {
  scheduler.current = &fiber;
  if (SAEKIT_EMULATOR_SETJMP(scheduler.mainJump) != 0) {
#if SAEKIT_EMULATOR_ASAN
    __sanitizer_finish_switch_fiber(scheduler.fakeStack, nullptr, nullptr);
#endif
    return;
  }
#if SAEKIT_EMULATOR_ASAN
  __sanitizer_start_switch_fiber(&scheduler.fakeStack, fiber.stack.get(), kFiberStackBytes);
#endif
  if (!fiber.started) {
    fiber.started = true;
    setcontext(&fiber.context);
  }
  SAEKIT_EMULATOR_LONGJMP(fiber.jump);
}

// Runs `body` as a kernel over `grid` blocks of `blockShape` threads with `sharedBytes` of
// dynamic shared memory each, a block at a time.
inline void launch(dim3 grid, dim3 blockShape, size_t sharedBytes, std::function<void()> body) {
  const unsigned threads = blockShape.x * blockShape.y * blockShape.z;
  if (threads == 0 || threads > 1024 || threads % 32 != 0) fail("blocks of 32 to 1024 threads, whole warps, only");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) fail("a grid the GPU refuses");
  if (scheduler.block != nullptr) fail("a kernel launched from a kernel");
  Block block;
  block.threads = threads;
  block.arrived.assign(1 + threads / 32, 0);
  block.shared.assign(sharedBytes + 128, 0xff);  // NaN bytes until written
  const uintptr_t at = reinterpret_cast<uintptr_t>(block.shared.data());
  block.sharedBase = block.shared.data() + (128 - at % 128) % 128;
  block.sharedSize = sharedBytes;
  block.exchange.resize(2 * static_cast<size_t>(threads));
  block.body = std::move(body);
  auto& fibers = fiberPool;
  if (fibers.size() < threads) fibers.resize(threads);
  block.fibers = &fibers;
  scheduler.block = &block;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        std::fill(block.arrived.begin(), block.arrived.end(), 0);
        for (unsigned t = 0; t < threads; ++t) {
          Fiber& fiber = fibers[t];
          if (!fiber.stack) fiber.stack.reset(new char[kFiberStackBytes]);
          fiber.state = ThreadState{};
          fiber.state.threadIdx = {t % blockShape.x, (t / blockShape.x) % blockShape.y, t / (blockShape.x * blockShape.y)};
          fiber.state.blockIdx = {bx, by, bz};
          fiber.state.blockDim = blockShape;
          fiber.state.gridDim = grid;
          fiber.state.linear = t;
          fiber.done = false;
          fiber.started = false;
          fiber.waitingOn = -1;
          getcontext(&fiber.context);
          fiber.context.uc_stack.ss_sp = fiber.stack.get();
          fiber.context.uc_stack.ss_size = kFiberStackBytes;
          fiber.context.uc_link = nullptr;
          makecontext(&fiber.context, fiberEntry, 0);
        }
        // Each warp in turn runs as far as it can (to a __syncthreads, or to its end) before the
        // next starts, the warps in forward order on even passes and backward on odd ones: a
        // warp that runs ahead of the block's barriers meets another warp's data early or late.
        // Within a warp, each lane runs to its next warp-wide operation in turn, the lanes in
        // forward and backward order by turns: a lane that reads what another lane wrote without
        // a warp barrier between finds it not yet written in one order or the other.
        const unsigned warps = threads / 32;
        unsigned finished = 0;
        for (unsigned pass = 0; finished < threads; ++pass) {
          bool ran = false;
          for (unsigned w = 0; w < warps; ++w) {
            const unsigned warp = pass % 2 == 0 ? w : warps - 1 - w;
            unsigned round = pass;
            for (bool progress = true; progress; ++round) {
              progress = false;
              for (unsigned l = 0; l < 32; ++l) {
                Fiber& fiber = fibers[32 * warp + (round % 2 == 0 ? l : 31 - l)];
                if (fiber.done || fiber.waitingOn >= 0) continue;
                resume(fiber);
                if (fiber.done) ++finished;
                progress = ran = true;
              }
            }
          }
          if (!ran && finished < threads) {
            scheduler.block = nullptr;
            fail("deadlock: a __syncthreads or warp-wide operation that not every thread reaches");
          }
        }
      }
  scheduler.current = nullptr;
  scheduler.block = nullptr;
}

}  // namespace saekit::emulator

#define threadIdx (::saekit::emulator::self().threadIdx)
#define blockIdx (::saekit::emulator::self().blockIdx)
#define blockDim (::saekit::emulator::self().blockDim)
#define gridDim (::saekit::emulator::self().gridDim)

inline void __syncthreads() {
  saekit::emulator::arriveAndWait(0, static_cast<int>(saekit::emulator::scheduler.block->threads));
}

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
T shuffleFrom(unsigned mask, T value, int source, bool own) {
  using namespace saekit::emulator;
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable<T>::value, "one word");
  if (mask != 0xffffffffu) fail("shuffles: only full-warp masks are emulated");
  Exchange exchange;
  std::memcpy(exchange.mine().words, &value, sizeof(T));
  exchange.meet();
  T result = value;
  if (!own) std::memcpy(&result, exchange.of(source).words, sizeof(T));
  return result;
}

template <class T>
T __shfl_sync(unsigned mask, T value, int source) {
  return shuffleFrom(mask, value, source & 31, false);
}

template <class T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta) {
  const int from = saekit::emulator::lane() + static_cast<int>(delta);
  return shuffleFrom(mask, value, from, from >= 32);
}

template <class T>
T __shfl_xor_sync(unsigned mask, T value, int laneMask) {
  return shuffleFrom(mask, value, (saekit::emulator::lane() ^ laneMask) & 31, false);
}

// A barrier of the warp (and, on the GPU, the ordering of its lanes' memory accesses): lanes
// that write what other lanes then read must meet here between, or the emulator's lane order
// (each lane runs to its next warp-wide operation before the next lane starts) shows it.
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  using namespace saekit::emulator;
  if (mask != 0xffffffffu) fail("__syncwarp: only full-warp masks are emulated");
  arriveAtWarpBarrier();
}

// CUDA's global min and max take any mix of arithmetic types; isnan and friends are global too.
template <class A, class B>
typename std::common_type<A, B>::type min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
typename std::common_type<A, B>::type max(A a, B b) {
  return a < b ? b : a;
}
using std::isfinite;
using std::isinf;
using std::isnan;

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }

template <class T, class U>
T atomicAdd(T* address, U value) {
  T old = *address;
  *address = static_cast<T>(old + static_cast<T>(value));
  return old;
}

template <class T, class U>
T atomicMax(T* address, U value) {
  T old = *address;
  if (static_cast<T>(value) > old) *address = static_cast<T>(value);
  return old;
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
inline int __float_as_int(float x) { return static_cast<int>(__float_as_uint(x)); }
inline float __int_as_float(int i) { return __uint_as_float(static_cast<unsigned>(i)); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
// The correctly rounded reciprocal: what IEEE division of 1 by x gives.
inline double __drcp_rn(double x) { return 1.0 / x; }

#include "cuda_runtime_api.h"
