#pragma once

#include <napi.h>

namespace saekit::binding {

// matmul(a, transposeA, b, m, k, n, out, threads) => Promise<void>: out = op(a) b (see
// native/cpu/matmul.h), off the main thread.
Napi::Value matmul(const Napi::CallbackInfo& info);

}  // namespace saekit::binding
