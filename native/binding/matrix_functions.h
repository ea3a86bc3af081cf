// Free functions over matrices: matmul (covariances and whitening for RICA's patches) and
// cosineSimilarity (the recovery metrics).
#pragma once

#include <napi.h>

namespace saekit::binding {

// Adds to the addon's exports:
//   matmul(a, transposeA, b, m, k, n, out, threads) => Promise<void>: out = op(a) b, off the main thread;
//   cosineSimilarity(a, aRows, b, bRows, cols, out, threads): out [aRows, bRows], synchronously.
void registerMatrixFunctions(Napi::Env env, Napi::Object exports);

}  // namespace saekit::binding
