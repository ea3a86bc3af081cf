// native/cuda/ptx.cuh's functions on the host, for kernels run by the GPU emulator
// (cuda_runtime.h here), each with the meaning the PTX ISA gives the instruction, checked as
// strictly as the hardware would be:
//   - cp.async copies land at the wait that retires their group, not before (the latest the
//     ISA allows), so a read that the kernel does not order after that wait and a barrier
//     sees stale bytes (or races, under ThreadSanitizer); sizes and alignments are checked.
//   - ldmatrix and mma.sync are warp-wide: every lane deposits its operands, the warp meets,
//     and each lane takes its results by the ISA's fragment layouts (written out here, apart
//     from gemm_tf32_layout.h); mma also checks that its operands are TF32 values.
// Include before any native/cuda header: it takes ptx.cuh's include guard.
#pragma once

#define SAEKIT_CUDA_PTX_CUH

#include <cuda_runtime.h>
#include <mma.h>

#include <cmath>
#include <cstdint>
#include <cstring>

namespace saekit::cuda::ptx {

inline float* dynamicShared() { return reinterpret_cast<float*>(emulator::scheduler.block->sharedBase); }

inline uint32_t sharedAddress(const void* p) {
  const auto* byte = static_cast<const unsigned char*>(p);
  const unsigned char* base = emulator::scheduler.block->sharedBase;
  if (byte < base || byte > base + emulator::scheduler.block->sharedSize) emulator::fail("sharedAddress: not shared memory");
  return static_cast<uint32_t>(byte - base);
}

inline unsigned char* sharedBytes(uint32_t address, int bytes) {
  if (static_cast<size_t>(address) + static_cast<size_t>(bytes) > emulator::scheduler.block->sharedSize) {
    emulator::fail("shared memory access past the block's dynamic shared memory");
  }
  return emulator::scheduler.block->sharedBase + address;
}

inline void queueCopy(uint32_t to, const float* from, int bytes, int validBytes) {
  if (validBytes < 0 || validBytes > bytes) emulator::fail("cp.async: src-size outside 0..cp-size");
  if (to % static_cast<uint32_t>(bytes) != 0 || reinterpret_cast<uintptr_t>(from) % static_cast<uintptr_t>(bytes) != 0) {
    emulator::fail("cp.async: an address not aligned to the copy size");
  }
  sharedBytes(to, bytes);
  emulator::self().open.push_back({to, from, bytes, validBytes});
}

inline void copy16(uint32_t to, const float* from, int validBytes) { queueCopy(to, from, 16, validBytes); }
inline void copy4(uint32_t to, const float* from, int validBytes) { queueCopy(to, from, 4, validBytes); }

inline void commitCopies() {
  emulator::self().committed.push_back(std::move(emulator::self().open));
  emulator::self().open.clear();
}

template <int kPending>
void waitCopies() {
  auto& groups = emulator::self().committed;
  while (groups.size() > static_cast<size_t>(kPending)) {
    for (const auto& copy : groups.front()) {
      unsigned char* to = sharedBytes(copy.to, copy.bytes);
      std::memcpy(to, copy.from, static_cast<size_t>(copy.validBytes));
      std::memset(to + copy.validBytes, 0, static_cast<size_t>(copy.bytes - copy.validBytes));
    }
    groups.erase(groups.begin());
  }
}

inline void loadMatrices(uint32_t (&r)[4], uint32_t address) {
  if (address % 16 != 0) emulator::fail("ldmatrix: a row address not 16-byte aligned");
  sharedBytes(address, 16);
  const int lane = emulator::lane();
  emulator::Exchange exchange;
  exchange.mine().words[0] = address;
  exchange.meet();
  for (int q = 0; q < 4; ++q) {
    const auto row = static_cast<uint32_t>(exchange.of(8 * q + lane / 4).words[0]);
    std::memcpy(&r[q], sharedBytes(row + 4 * static_cast<uint32_t>(lane % 4), 4), 4);
  }
}

inline bool isTf32(uint32_t bits) { return (bits & 0x1fffu) == 0; }

// With g = lane / 4, t = lane % 4: a0..a3 hold A (g, t), (g + 8, t), (g, t + 4), (g + 8, t + 4);
// b0, b1 hold B (k t, n g), (k t + 4, n g); c0..c3 are D (g, 2t), (g, 2t + 1), (g + 8, 2t),
// (g + 8, 2t + 1). Products summed in double, added to c in float.
inline void multiplyAccumulateTf32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  const int lane = emulator::lane();
  emulator::Exchange exchange;
  for (int i = 0; i < 4; ++i) {
    if (!isTf32(a[i]) || (i < 2 && !isTf32(b[i]))) emulator::fail("mma.sync tf32: an operand that is not a TF32 value");
    exchange.mine().words[i] = a[i];
  }
  exchange.mine().words[4] = b[0];
  exchange.mine().words[5] = b[1];
  exchange.meet();
  const auto aAt = [&](int row, int k) {  // A (row, k)
    return __uint_as_float(
        static_cast<uint32_t>(exchange.of(4 * (row % 8) + k % 4).words[(row >= 8 ? 1 : 0) + (k >= 4 ? 2 : 0)]));
  };
  const auto bAt = [&](int k, int n) {  // B (k, n)
    return __uint_as_float(static_cast<uint32_t>(exchange.of(4 * n + k % 4).words[4 + (k >= 4 ? 1 : 0)]));
  };
  for (int e = 0; e < 4; ++e) {
    const int row = lane / 4 + 8 * (e / 2), col = 2 * (lane % 4) + e % 2;
    double sum = 0;
    for (int k = 0; k < 8; ++k) sum += static_cast<double>(aAt(row, k)) * bAt(k, col);
    c[e] = static_cast<float>(static_cast<double>(c[e]) + sum);
  }
}

// cvt.rna.tf32.f32: to nearest, ties away from zero, keeping 10 mantissa bits.
inline float roundToTf32(float x) { return nvcuda::wmma::__float_to_tf32(x); }

}  // namespace saekit::cuda::ptx
