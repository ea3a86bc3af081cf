// cosineSimilarity(a, aRows, b, bRows, cols, out, threads): out [aRows, bRows], synchronously.
#include "similarity_binding.h"

#include <string>

#include "../core/error.h"
#include "../core/memory.h"
#include "../core/similarity.h"
#include "args.h"
#include "backend_wrap.h"

namespace saekit::binding {
namespace {

Napi::Value cosineSimilarity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t aRows = countArg(info, 1, "aRows");
    const int64_t bRows = countArg(info, 3, "bRows");
    const int64_t cols = countArg(info, 4, "cols");
    const double threads = numberArg(info, 6, "threads");
    if (!(threads >= 1 && threads <= 1024)) throwRangeError("Expected threads in [1, 1024]");
    Napi::Float32Array a = floatsArg(info, 0, "a", aRows * cols);
    Napi::Float32Array b = floatsArg(info, 2, "b", bRows * cols);
    Napi::Float32Array out = floatsArg(info, 5, "out", aRows * bRows);
    // Unit-norm copies of both inputs and the packed right operand.
    checkMemory(static_cast<uint64_t>(aRows + 2 * bRows) * static_cast<uint64_t>(cols) * sizeof(float),
                "Cosine similarities of " + std::to_string(aRows) + " by " + std::to_string(bRows) + " rows");
    cosineSimilarityCpu(a.Data(), aRows, b.Data(), bRows, cols, out.Data(), static_cast<int>(threads));
    return env.Undefined();
  });
}

}  // namespace

void registerSimilarity(Napi::Env env, Napi::Object exports) {
  exports.Set("cosineSimilarity", Napi::Function::New(env, cosineSimilarity, "cosineSimilarity"));
}

}  // namespace saekit::binding
