#include "gemm.h"

#include <algorithm>
#include <cstring>

#include "../core/ceil_div.h"

namespace saekit::cpu {
namespace {

// Depth of one packed block: an mr x kc sliver of A and a kc x nr panel of B stay in the
// L1 cache while the microkernel runs.
constexpr int64_t kKc = 256;
// Target rows per block: the packed mc x kc block of A stays in L2.
constexpr int64_t kMcTarget = 96;


// Offset of the panel holding columns [panel*nr, panel*nr + nr) at depth k0 in a packed B.
int64_t panelOffset(const PackedB& b, int64_t k0, int64_t panel) {
  const int64_t kc = std::min(kKc, b.k - k0);
  const int64_t paddedN = ceilDiv(b.n, b.nr) * b.nr;
  return k0 * paddedN + panel * kc * b.nr;
}

// Packs rows [row0, row0 + rows) and depths [k0, k0 + kc) of A into mr-row slivers.
void packA(const OperandA& a, int64_t row0, int64_t rows, int64_t k0, int64_t kc, int mr, float* out) {
  for (int64_t r0 = 0; r0 < rows; r0 += mr) {
    const int64_t live = std::min<int64_t>(mr, rows - r0);
    for (int64_t i = 0; i < mr; ++i) {
      if (i >= live) {
        for (int64_t k = 0; k < kc; ++k) out[k * mr + i] = 0.0f;
        continue;
      }
      const int64_t row = row0 + r0 + i;
      if (a.transposed) {
        for (int64_t k = 0; k < kc; ++k) out[k * mr + i] = a.data[(k0 + k) * a.ld + row];
      } else {
        const float* src = a.data + row * a.ld + k0;
        for (int64_t k = 0; k < kc; ++k) out[k * mr + i] = src[k];
      }
      if (a.shift != nullptr) {
        for (int64_t k = 0; k < kc; ++k) out[k * mr + i] -= a.shift[k0 + k];
      }
    }
    out += kc * mr;
  }
}

}  // namespace

void packB(const Kernels& kernels, ThreadPool& pool, const float* b, int64_t ldb, Layout layout,
           int64_t n, int64_t k, PackedB& out) {
  const int64_t nr = kernels.nr;
  const int64_t panels = ceilDiv(n, nr);
  out.n = n;
  out.k = k;
  out.nr = nr;
  out.data.resize(static_cast<size_t>(panels * nr * k));
  const int64_t kBlocks = ceilDiv(k, kKc);
  pool.run(static_cast<size_t>(panels), [&](size_t task, int) {
    const int64_t panel = static_cast<int64_t>(task);
    const int64_t j0 = panel * nr;
    const int64_t live = std::min(nr, n - j0);
    for (int64_t kb = 0; kb < kBlocks; ++kb) {
      const int64_t k0 = kb * kKc;
      const int64_t kc = std::min(kKc, k - k0);
      float* dst = out.data.data() + panelOffset(out, k0, panel);
      if (layout == Layout::RowsAreColumnsOfC) {
        for (int64_t jj = 0; jj < nr; ++jj) {
          if (jj < live) {
            const float* src = b + (j0 + jj) * ldb + k0;
            for (int64_t kk = 0; kk < kc; ++kk) dst[kk * nr + jj] = src[kk];
          } else {
            for (int64_t kk = 0; kk < kc; ++kk) dst[kk * nr + jj] = 0.0f;
          }
        }
      } else {
        for (int64_t kk = 0; kk < kc; ++kk) {
          const float* src = b + (k0 + kk) * ldb + j0;
          float* row = dst + kk * nr;
          std::memcpy(row, src, static_cast<size_t>(live) * sizeof(float));
          for (int64_t jj = live; jj < nr; ++jj) row[jj] = 0.0f;
        }
      }
    }
  });
}

void packRow(PackedB& b, int64_t j, const float* values) {
  const int64_t panel = j / b.nr;
  const int64_t lane = j % b.nr;
  for (int64_t k0 = 0; k0 < b.k; k0 += kKc) {
    const int64_t kc = std::min(kKc, b.k - k0);
    float* dst = b.data.data() + panelOffset(b, k0, panel) + lane;
    for (int64_t kk = 0; kk < kc; ++kk) dst[kk * b.nr] = values[k0 + kk];
  }
}

RowBlocking chooseRowBlocking(int64_t rows, int threads, int mr) {
  if (rows <= 0) return {mr, 0};
  int64_t count = ceilDiv(rows, kMcTarget);
  // Whole rounds of blocks keep the threads evenly loaded; small batches still get
  // one block per thread where there are enough rows.
  count = std::max<int64_t>(count, std::min<int64_t>(threads, ceilDiv(rows, mr)));
  count = ceilDiv(count, threads) * threads;
  int64_t size = ceilDiv(ceilDiv(rows, count), mr) * mr;
  return {size, ceilDiv(rows, size)};
}

size_t GemmScratch::bytes() const {
  size_t total = 0;
  for (const auto& b : packedA) total += b.bytes();
  for (const auto& b : block) total += b.bytes();
  for (const auto& b : tile) total += b.bytes();
  return total;
}

void gemm(const Kernels& kernels, ThreadPool& pool, GemmScratch& scratch, const OperandA& a, int64_t m,
          const PackedB& b, float* c, int64_t ldc, const RowBlocking& blocking, const RowBlockDone& done) {
  const int mr = kernels.mr;
  const int64_t nr = b.nr;
  const int64_t n = b.n;
  const int64_t k = b.k;
  const int64_t panels = ceilDiv(n, nr);
  const size_t threads = static_cast<size_t>(pool.size());
  if (scratch.packedA.size() < threads) {
    scratch.packedA.resize(threads);
    scratch.block.resize(threads);
    scratch.tile.resize(threads);
  }
  pool.run(static_cast<size_t>(blocking.count), [&](size_t task, int thread) {
    const int64_t row0 = static_cast<int64_t>(task) * blocking.size;
    const int64_t rows = std::min(blocking.size, m - row0);
    const int64_t slivers = ceilDiv(rows, mr);
    Buffer<float>& aPack = scratch.packedA[thread];
    aPack.resize(static_cast<size_t>(slivers * mr * std::min(kKc, k)));
    Buffer<float>& tile = scratch.tile[thread];
    tile.resize(static_cast<size_t>(mr * nr));
    float* cBlock;
    int64_t ldcBlock;
    if (c != nullptr) {
      cBlock = c + row0 * ldc;
      ldcBlock = ldc;
    } else {
      Buffer<float>& block = scratch.block[thread];
      block.resize(static_cast<size_t>(rows * n));
      cBlock = block.data();
      ldcBlock = n;
    }
    if (k == 0) {
      for (int64_t i = 0; i < rows; ++i) std::memset(cBlock + i * ldcBlock, 0, n * sizeof(float));
    }
    for (int64_t k0 = 0; k0 < k; k0 += kKc) {
      const int64_t kc = std::min(kKc, k - k0);
      const bool accumulate = k0 > 0;
      packA(a, row0, rows, k0, kc, mr, aPack.data());
      for (int64_t panel = 0; panel < panels; ++panel) {
        const float* bPanel = b.data.data() + panelOffset(b, k0, panel);
        const int64_t j0 = panel * nr;
        const int64_t cols = std::min(nr, n - j0);
        for (int64_t s = 0; s < slivers; ++s) {
          const float* aSliver = aPack.data() + s * kc * mr;
          const int64_t i0 = s * mr;
          const int64_t liveRows = std::min<int64_t>(mr, rows - i0);
          float* cTile = cBlock + i0 * ldcBlock + j0;
          if (liveRows == mr && cols == nr) {
            kernels.microkernel(kc, aSliver, bPanel, cTile, ldcBlock, accumulate);
          } else {
            kernels.microkernel(kc, aSliver, bPanel, tile.data(), nr, false);
            for (int64_t i = 0; i < liveRows; ++i) {
              const float* src = tile.data() + i * nr;
              float* dst = cTile + i * ldcBlock;
              if (accumulate) {
                for (int64_t j = 0; j < cols; ++j) dst[j] += src[j];
              } else {
                std::memcpy(dst, src, static_cast<size_t>(cols) * sizeof(float));
              }
            }
          }
        }
      }
    }
    done(thread, static_cast<int64_t>(task), row0, rows, cBlock, ldcBlock);
  });
}

}  // namespace saekit::cpu
