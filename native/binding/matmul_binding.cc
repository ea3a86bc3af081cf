#include "matmul_binding.h"

#include <string>

#include "../core/error.h"
#include "../core/memory.h"
#include "../cpu/matmul.h"
#include "args.h"
#include "backend_wrap.h"
#include "job.h"

namespace saekit::binding {

Napi::Value matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 2 || !info[1].IsBoolean()) throwTypeError("Expected boolean for transposeA");
    const bool transposeA = info[1].As<Napi::Boolean>().Value();
    const int64_t m = countArg(info, 3, "m");
    const int64_t k = countArg(info, 4, "k");
    const int64_t n = countArg(info, 5, "n");
    const double threads = numberArg(info, 7, "threads");
    if (!(threads >= 1 && threads <= 1024)) throwRangeError("Expected threads in [1, 1024]");
    Napi::Float32Array a = floatsArg(info, 0, "a", m * k);
    Napi::Float32Array b = floatsArg(info, 2, "b", k * n);
    Napi::Float32Array out = floatsArg(info, 6, "out", m * n);
    // The packed copy of b: k rows of n rounded up to whole 16-wide panels.
    checkMemory(static_cast<uint64_t>(k) * (n + 16) * sizeof(float),
                "A matrix product of depth " + std::to_string(k) + " and width " + std::to_string(n));
    const float* aData = a.Data();
    const float* bData = b.Data();
    float* c = out.Data();
    const int pool = static_cast<int>(threads);
    return Job::start(
        env, Napi::Object::New(env), {a, b, out},
        [=] { cpu::multiply(aData, transposeA, bData, m, k, n, c, pool); },
        [](Napi::Env e) -> Napi::Value { return e.Undefined(); }, [] {});
  });
}

}  // namespace saekit::binding
