// Where every value of the TF32 encoder kernel (gemm_tf32.cuh) lives: which
// thread copies which 16-byte chunk of an operand tile into shared memory and where it lands,
// which shared-memory rows each lane hands to ldmatrix, and which tile element each
// accumulator register holds. Plain integer functions, shared by the kernel and a host test
// (native_tests.cc) that replays the kernel's data movement with the PTX ISA's ldmatrix and
// mma.m16n8k8 layouts and checks it against a plain product, so the indexing is tested on
// machines without a GPU.
//
// A block computes a 128 x 128 tile of a b^T (a [rows, k], b [n, k], both K-contiguous) in
// steps of 32 along k. Each step's operand tile is 128 rows x 32 floats = 8 chunks of 4 floats
// per row; chunk c of row r is stored at chunk position c ^ (r % 8) of that row (an XOR
// swizzle), so the 8 rows one ldmatrix matrix reads (8 consecutive rows, one chunk each) fall
// in 8 different groups of 4 banks, and no padding is needed.
#pragma once

#include <cstdint>

#include "../core/host_device.h"

namespace saekit::cuda::tf32 {

constexpr int kTileRows = 128;  // rows of a and of b (columns of the product) per block
constexpr int kTileDepth = 32;  // k per pipeline stage
constexpr int kChunkFloats = 4;  // 16 bytes: one cp.async, one ldmatrix row
constexpr int kChunksPerRow = kTileDepth / kChunkFloats;
constexpr int kOperandFloats = kTileRows * kTileDepth;
constexpr int kThreads = 256;  // 8 warps, 2 x 4 over the tile, each 64 rows x 32 columns
constexpr int kChunksPerThread = kTileRows * kChunksPerRow / kThreads;  // per operand and stage
// Row stride of the finished tile in shared memory: 8 banks apart, so the float2 stores of
// the 16 lanes of a half-warp (4 rows x 4 column pairs) hit 32 different banks.
constexpr int kEpilogueLd = kTileRows + 8;

struct RowChunk {
  int row;    // 0..127 within the operand tile
  int chunk;  // 0..7: k = 4 chunk .. 4 chunk + 3 within the stage
};

// Offset in floats, within one operand tile, of chunk `chunk` of row `row`.
SAEKIT_HOST_DEVICE constexpr int chunkOffset(int row, int chunk) {
  return row * kTileDepth + (chunk ^ (row & 7)) * kChunkFloats;
}

// The s-th chunk (s < kChunksPerThread) that thread `thread` copies: 8 consecutive threads
// copy the 128 contiguous bytes of one row.
SAEKIT_HOST_DEVICE constexpr RowChunk loaderChunk(int thread, int s) {
  return {(thread >> 3) + (kThreads / kChunksPerRow) * s, thread & 7};
}

// How many of the 4 floats of a chunk starting at depth `k` lie within `depth` (the rest are
// filled with zeros): 0..4.
SAEKIT_HOST_DEVICE constexpr int validFloats(int64_t k, int64_t depth) {
  return k >= depth ? 0 : (depth - k >= kChunkFloats ? kChunkFloats : static_cast<int>(depth - k));
}

SAEKIT_HOST_DEVICE constexpr int warpRow(int warp) { return (warp >> 2) * 64; }
SAEKIT_HOST_DEVICE constexpr int warpCol(int warp) { return (warp & 3) * 32; }

// ldmatrix.x4 takes one row address from each lane: lane l names row l % 8 of matrix l / 8,
// and register q of lane l receives 32 bits (here one float) number l % 4 of row l / 4 of
// matrix q. For A fragment i (rows warpRow + 16 i ..) at step ks (k = 8 ks .. 8 ks + 7 of the
// stage) the four matrices are rows 0-7 / 8-15 / 0-7 / 8-15 at k 0-3 / 0-3 / 4-7 / 4-7,
// which makes the registers mma.m16n8k8's a0..a3: (g, t), (g + 8, t), (g, t + 4), (g + 8, t + 4)
// with g = lane / 4, t = lane % 4.
SAEKIT_HOST_DEVICE constexpr RowChunk aFragmentRow(int warp, int i, int ks, int lane) {
  return {warpRow(warp) + 16 * i + (lane & 7) + 8 * ((lane >> 3) & 1), 2 * ks + (lane >> 4)};
}

// For B fragments 2 jj and 2 jj + 1 (product columns warpCol + 16 jj ..), one ldmatrix.x4:
// matrices n 0-7 at k 0-3, n 0-7 at k 4-7, n 8-15 at k 0-3, n 8-15 at k 4-7, giving b0, b1 of
// fragment 2 jj and b0, b1 of fragment 2 jj + 1; b0 = (k t, n g), b1 = (k t + 4, n g).
SAEKIT_HOST_DEVICE constexpr RowChunk bFragmentRow(int warp, int jj, int ks, int lane) {
  return {warpCol(warp) + 16 * jj + (lane & 7) + 8 * (lane >> 4), 2 * ks + ((lane >> 3) & 1)};
}

// Register q of the ldmatrix.x4 for B pair jj (above) is b[index] of B fragment `fragment`.
struct FragmentRegister {
  int fragment;  // 0..3 within the warp's 32 columns
  int index;     // 0 (b0) or 1 (b1)
};
SAEKIT_HOST_DEVICE constexpr FragmentRegister bRegisterTarget(int jj, int q) { return {2 * jj + (q >> 1), q & 1}; }

// Accumulator register e (0..3) of fragment (i, j) of `lane`: c0 (g, 2t), c1 (g, 2t + 1),
// c2 (g + 8, 2t), c3 (g + 8, 2t + 1) of the 16 x 8 fragment, as a row and column of the tile.
SAEKIT_HOST_DEVICE constexpr int accumulatorRow(int warp, int i, int lane, int e) {
  return warpRow(warp) + 16 * i + (lane >> 2) + 8 * (e >> 1);
}
SAEKIT_HOST_DEVICE constexpr int accumulatorCol(int warp, int j, int lane, int e) {
  return warpCol(warp) + 8 * j + 2 * (lane & 3) + (e & 1);
}

}  // namespace saekit::cuda::tf32
