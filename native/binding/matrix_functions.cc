#include "matrix_functions.h"

#include <string>

#include "../core/error.h"
#include "../core/memory.h"
#include "../cpu/matmul.h"
#include "args.h"
#include "backend_wrap.h"
#include "job.h"

namespace saekit::binding {
namespace {

int threadsArg(const Napi::CallbackInfo& info, size_t index) {
  const double threads = numberArg(info, index, "threads");
  if (!(threads >= 1 && threads <= 1024)) throwRangeError("Expected threads in [1, 1024]");
  return static_cast<int>(threads);
}

Napi::Value matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 2 || !info[1].IsBoolean()) throwTypeError("Expected boolean for transposeA");
    const bool transposeA = info[1].As<Napi::Boolean>().Value();
    const int64_t m = countArg(info, 3, "m");
    const int64_t k = countArg(info, 4, "k");
    const int64_t n = countArg(info, 5, "n");
    const int threads = threadsArg(info, 7);
    Napi::Float32Array a = floatsArg(info, 0, "a", m * k);
    Napi::Float32Array b = floatsArg(info, 2, "b", k * n);
    Napi::Float32Array out = floatsArg(info, 6, "out", m * n);
    // The packed copy of b: k rows of n rounded up to whole 16-wide panels.
    checkMemory(static_cast<uint64_t>(k) * (n + 16) * sizeof(float),
                "A matrix product of depth " + std::to_string(k) + " and width " + std::to_string(n));
    const float* aData = a.Data();
    const float* bData = b.Data();
    float* c = out.Data();
    return Job::start(
        env, Napi::Object::New(env), {a, b, out}, [=] { cpu::multiply(aData, transposeA, bData, false, m, k, n, c, threads); },
        [](Napi::Env e) -> Napi::Value { return e.Undefined(); }, [] {});
  });
}

Napi::Value cosineSimilarity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t aRows = countArg(info, 1, "aRows");
    const int64_t bRows = countArg(info, 3, "bRows");
    const int64_t cols = countArg(info, 4, "cols");
    const int threads = threadsArg(info, 6);
    Napi::Float32Array a = floatsArg(info, 0, "a", aRows * cols);
    Napi::Float32Array b = floatsArg(info, 2, "b", bRows * cols);
    Napi::Float32Array out = floatsArg(info, 5, "out", aRows * bRows);
    // Unit-norm copies of both inputs and the packed right operand.
    checkMemory(static_cast<uint64_t>(aRows + 2 * bRows) * static_cast<uint64_t>(cols) * sizeof(float),
                "Cosine similarities of " + std::to_string(aRows) + " by " + std::to_string(bRows) + " rows");
    cpu::cosineSimilarity(a.Data(), aRows, b.Data(), bRows, cols, out.Data(), threads);
    return env.Undefined();
  });
}

}  // namespace

void registerMatrixFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, matmul, "matmul"));
  exports.Set("cosineSimilarity", Napi::Function::New(env, cosineSimilarity, "cosineSimilarity"));
}

}  // namespace saekit::binding
