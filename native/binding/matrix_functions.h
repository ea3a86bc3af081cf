// Free functions over matrices: matmul (covariances and whitening for RICA's patches),
// cosineSimilarity (the recovery metrics) and gatherRows (fit's batches of a Matrix).
#pragma once

#include <napi.h>

namespace saekit::binding {

// Adds to the addon's exports:
//   matmul(a, transposeA, b, m, k, n, out, threads) => Promise<void>: out = op(a) b, off the main thread;
//   cosineSimilarity(a, aRows, b, bRows, cols, out, threads): out [aRows, bRows], synchronously;
//   gatherRows(source, cols, rowIds, out): row i of out = row rowIds[i] of source, synchronously.
void registerMatrixFunctions(Napi::Env env, Napi::Object exports);

}  // namespace saekit::binding
