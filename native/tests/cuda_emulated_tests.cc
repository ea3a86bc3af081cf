// CUDA kernels run on the host by the GPU emulator (gpu_emulator/), so that their own code —
// indexing, bounds, the cp.async pipeline and its barriers, the compaction — is tested on
// machines without a GPU (CI's among them). What the emulator cannot stand for is the
// hardware itself: cuda_tests checks the same kernels on a GPU. Built by CMakeLists.txt with
// the host compiler (-I native/tests/gpu_emulator), run by ctest; exits non-zero on the first
// failing check. Now: the TF32 encoder product (cuda/gemm_tf32.cuh).
#include "gpu_emulator/ptx.h"  // first: it stands in for cuda/ptx.cuh

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../core/rng.h"
#include "../cuda/gemm_tf32.cuh"
#include "check.h"

using namespace saekit;
using namespace saekit::cuda;

namespace {

using testing::failures;

struct Shape {
  int64_t rows, n, k;
  int64_t ld;                   // of a and b (>= k)
  int64_t aOffset;              // floats before a's first: 1 makes a misaligned for 16-byte copies
  int64_t maxColumnBlocks;      // < tiles: blocks loop over column tiles
};

// The encoder product by the TF32 kernel, as launchEncoderTf32 would run it
// (16-byte copies exactly when a and b allow them), against double sums. `exact`: small
// integer inputs and half-integer biases, so every unit must be exact (TF32 holds the
// integers, and float every sum); otherwise TF32's tolerance.
void testTf32Encoder(const Shape& s, bool exact, bool smallPool) {
  Rng rng(static_cast<uint64_t>(s.rows * 1000003 + s.n * 1009 + s.k + (exact ? 7 : 0)));
  const auto draw = [&](size_t count, double scale, double shift) {
    std::vector<float> v(count);
    for (auto& x : v) {
      x = exact ? static_cast<float>(static_cast<int>(rng.next() % 7) - 3 + shift)
                : static_cast<float>(scale * rng.normal());
    }
    return v;
  };
  // Exactly sized, so that AddressSanitizer sees any read past them.
  const auto a = draw(static_cast<size_t>(s.rows * s.ld + s.aOffset), 1.0, 0.0);
  const auto b = draw(static_cast<size_t>(s.n * s.ld), 1.0 / std::sqrt(static_cast<double>(s.k)), 0.0);
  const auto bias = draw(static_cast<size_t>(s.n), 0.1, 0.5);
  const float* aStart = a.data() + s.aOffset;

  const int64_t tiles = ceilDiv(s.n, kGemmTileN);
  const int64_t capacity = smallPool ? 3 : s.rows * s.n;
  constexpr int64_t kGuard = 16;
  std::vector<int32_t> counts(static_cast<size_t>(s.rows * tiles), -1), indices(static_cast<size_t>(capacity + kGuard), -1);
  std::vector<int64_t> positions(static_cast<size_t>(s.rows * tiles), -1);
  std::vector<float> values(static_cast<size_t>(capacity + kGuard), -7.0f);
  unsigned long long used = 0;
  ActiveUnitsOut out{bias.data(), 0.0f, tiles, counts.data(), positions.data(), values.data(), indices.data(),
                     capacity, &used};

  const bool vector = tf32::sixteenByteRows(aStart, s.ld) && tf32::sixteenByteRows(b.data(), s.ld);
  const dim3 grid(static_cast<unsigned>(ceilDiv(s.rows, kGemmTileM)),
                  static_cast<unsigned>(std::min(tiles, s.maxColumnBlocks)));
  emulator::launch(grid, tf32::kThreads, tf32::kTf32SharedBytes, [&] {
    if (vector) {
      tf32::encoderTf32Kernel<true>(aStart, s.ld, s.rows, b.data(), s.ld, s.n, s.k, out);
    } else {
      tf32::encoderTf32Kernel<false>(aStart, s.ld, s.rows, b.data(), s.ld, s.n, s.k, out);
    }
  });

  char what[200];
  std::snprintf(what, sizeof what, "%ldx%ldx%ld (ld %ld, a offset %ld, %s copies, %ld column blocks%s%s)", s.rows, s.n,
                s.k, s.ld, s.aOffset, vector ? "16-byte" : "4-byte", static_cast<int64_t>(grid.y),
                exact ? ", exact" : "", smallPool ? ", pool of 3" : "");
  int64_t total = 0;
  for (int32_t c : counts) total += c;
  CHECK(static_cast<int64_t>(used) == total, "%s: pool counter %llu, tile counts %ld", what, used, total);
  if (smallPool) {
    for (int64_t i = capacity; i < capacity + kGuard; ++i) {
      CHECK(values[i] == -7.0f && indices[i] == -1, "%s: written past a full pool at %ld", what, i);
    }
    return;
  }
  const int misses = testing::productMisses(aStart, b.data(), bias.data(), s.rows, s.n, s.k, s.ld, kGemmTileN,
                                            counts.data(), positions.data(), values.data(), indices.data(),
                                            exact ? 0.0 : 4e-3);
  CHECK(misses == 0, "%s: %d units missing, misplaced or wrong", what, misses);
}

}  // namespace

int main() {
  // Row and column tails, k below, at and above one 32-deep stage and past the 3-stage ring,
  // k % 4 != 0 with 16-byte rows (padded ld: partial 16-byte copies), misaligned a, and
  // blocks looping over column tiles.
  const Shape shapes[] = {
      {130, 129, 33, 33, 0, 65535}, {150, 260, 45, 48, 0, 1}, {7, 300, 3, 4, 0, 65535},
      {100, 384, 64, 64, 1, 2},     {64, 200, 160, 160, 0, 65535},
  };
  for (const Shape& s : shapes) testTf32Encoder(s, true, false);
  // Random inputs: every operand must be rounded to TF32 before the mma (the emulator checks).
  testTf32Encoder(shapes[0], false, false);
  testTf32Encoder(shapes[4], false, false);
  testTf32Encoder(shapes[1], true, true);
  std::printf("%s: %d failed checks\n", failures == 0 ? "ok" : "FAILED", failures);
  return failures == 0 ? 0 : 1;
}
