#include "matrix_functions.h"

#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.h"
#include "../core/memory.h"
#include "../cpu/lbfgs.h"
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
    Napi::Float32Array a = floatsArg(info, 0, "a", elementCount(m, k, "m"));
    Napi::Float32Array b = floatsArg(info, 2, "b", elementCount(k, n, "k"));
    Napi::Float32Array out = floatsArg(info, 6, "out", elementCount(m, n, "m"));
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

// A Float64Array of exactly n elements (the L-BFGS passes' vectors), as an argument or an
// element of one.
Napi::Float64Array vectorOf(Napi::Value value, const std::string& name, int64_t n) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throwTypeError("Expected Float64Array for " + name);
  }
  Napi::Float64Array array = value.As<Napi::Float64Array>();
  if (static_cast<int64_t>(array.ElementLength()) != n) {
    throwRangeError("Expected " + std::to_string(n) + " elements in " + name + " but received " +
                    std::to_string(array.ElementLength()));
  }
  return array;
}

Napi::Float64Array vectorArg(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t n) {
  return vectorOf(info.Length() > index ? info[index] : info.Env().Undefined(), name, n);
}

// lbfgsDirection(g, s[], y[], rho, gamma, direction, threads) => Promise<slope>: the two-loop
// recursion of lib/lbfgs.ts off the main thread (cpu/lbfgs.h), every array a Float64Array of
// g's length but rho (one per pair).
Napi::Value lbfgsDirection(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    // The lists' elements are read first: reading one may run JS (a getter), which must not
    // find an array whose memory is already taken.
    const auto elements = [&](size_t index, const char* name) {
      if (info.Length() <= index || !info[index].IsArray()) throwTypeError(std::string("Expected array for ") + name);
      Napi::Array list = info[index].As<Napi::Array>();
      std::vector<Napi::Value> values;
      for (uint32_t j = 0; j < list.Length(); j++) values.push_back(list.Get(j));
      return values;
    };
    const std::vector<Napi::Value> sValues = elements(1, "s");
    const std::vector<Napi::Value> yValues = elements(2, "y");
    Napi::Float64Array g = doublesArg(info, 0, "g", 0);
    const auto n = static_cast<int64_t>(g.ElementLength());
    std::vector<Napi::Value> keepAlive{g};
    const auto pairArrays = [&](const std::vector<Napi::Value>& values, const char* name) {
      std::vector<const double*> data;
      for (size_t j = 0; j < values.size(); j++) {
        Napi::Float64Array array = vectorOf(values[j], std::string(name) + "[" + std::to_string(j) + "]", n);
        keepAlive.push_back(array);
        data.push_back(array.Data());
      }
      return data;
    };
    auto s = std::make_shared<std::vector<const double*>>(pairArrays(sValues, "s"));
    auto y = std::make_shared<std::vector<const double*>>(pairArrays(yValues, "y"));
    if (s->empty() || s->size() != y->size()) {
      throwRangeError("Expected as many y as s, at least one, but received " + std::to_string(s->size()) + " and " +
                      std::to_string(y->size()));
    }
    const int count = static_cast<int>(s->size());
    Napi::Float64Array rho = doublesArg(info, 3, "rho", count);
    const double gamma = numberArg(info, 4, "gamma");
    Napi::Float64Array direction = vectorArg(info, 5, "direction", n);
    const int threads = threadsArg(info, 6);
    keepAlive.push_back(rho);
    keepAlive.push_back(direction);
    const double* gData = g.Data();
    const double* rhoData = rho.Data();
    double* out = direction.Data();
    auto slope = std::make_shared<double>(0.0);
    return Job::start(
        env, Napi::Object::New(env), keepAlive,
        [=] {
          *slope = cpu::lbfgsDirection(gData, n, cpu::LbfgsPairs{s->data(), y->data(), rhoData, count}, gamma, out,
                                       threads);
        },
        [slope](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *slope); }, [] {});
  });
}

// { name: value, ... } from numbers.
Napi::Object numbersObject(Napi::Env env, std::initializer_list<std::pair<const char*, double>> fields) {
  Napi::Object object = Napi::Object::New(env);
  for (const auto& [name, value] : fields) object.Set(name, value);
  return object;
}

// lbfgsSteepest(g, direction, threads) => Promise<{ slope, l1 }>: direction = -g, with
// g . direction and sum |g_i|.
Napi::Value lbfgsSteepest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Float64Array g = doublesArg(info, 0, "g", 0);
    const auto n = static_cast<int64_t>(g.ElementLength());
    Napi::Float64Array direction = vectorArg(info, 1, "direction", n);
    const int threads = threadsArg(info, 2);
    const double* gData = g.Data();
    double* out = direction.Data();
    auto result = std::make_shared<cpu::LbfgsSteepest>();
    return Job::start(
        env, Napi::Object::New(env), {g, direction}, [=] { *result = cpu::lbfgsSteepest(gData, n, out, threads); },
        [result](Napi::Env e) -> Napi::Value {
          return numbersObject(e, {{"slope", result->slope}, {"l1", result->l1}});
        },
        [] {});
  });
}

// lbfgsStep(out, origin, alpha, p, threads) => Promise<undefined>: out = origin + alpha p.
Napi::Value lbfgsStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Float64Array out = doublesArg(info, 0, "out", 0);
    const auto n = static_cast<int64_t>(out.ElementLength());
    Napi::Float64Array origin = vectorArg(info, 1, "origin", n);
    const double alpha = numberArg(info, 2, "alpha");
    Napi::Float64Array p = vectorArg(info, 3, "p", n);
    const int threads = threadsArg(info, 4);
    double* outData = out.Data();
    const double* originData = origin.Data();
    const double* pData = p.Data();
    return Job::start(
        env, Napi::Object::New(env), {out, origin, p},
        [=] { cpu::lbfgsStep(outData, originData, alpha, pData, n, threads); },
        [](Napi::Env e) -> Napi::Value { return e.Undefined(); }, [] {});
  });
}

// lbfgsSlope(g, p, threads) => Promise<{ slope, gMax }>: g . p and max |g_i|.
Napi::Value lbfgsSlope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Float64Array g = doublesArg(info, 0, "g", 0);
    const auto n = static_cast<int64_t>(g.ElementLength());
    Napi::Float64Array p = vectorArg(info, 1, "p", n);
    const int threads = threadsArg(info, 2);
    const double* gData = g.Data();
    const double* pData = p.Data();
    auto result = std::make_shared<cpu::LbfgsSlope>();
    return Job::start(
        env, Napi::Object::New(env), {g, p}, [=] { *result = cpu::lbfgsSlope(gData, pData, n, threads); },
        [result](Napi::Env e) -> Napi::Value {
          return numbersObject(e, {{"slope", result->slope}, {"gMax", result->gMax}});
        },
        [] {});
  });
}

// lbfgsPair(s, y, x0, x1, g0, g1, threads) => Promise<{ sy, ss, yy }>: s = x1 - x0,
// y = g1 - g0 and their products.
Napi::Value lbfgsPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Float64Array s = doublesArg(info, 0, "s", 0);
    const auto n = static_cast<int64_t>(s.ElementLength());
    Napi::Float64Array y = vectorArg(info, 1, "y", n);
    Napi::Float64Array x0 = vectorArg(info, 2, "x0", n);
    Napi::Float64Array x1 = vectorArg(info, 3, "x1", n);
    Napi::Float64Array g0 = vectorArg(info, 4, "g0", n);
    Napi::Float64Array g1 = vectorArg(info, 5, "g1", n);
    const int threads = threadsArg(info, 6);
    double* sData = s.Data();
    double* yData = y.Data();
    const double* x0Data = x0.Data();
    const double* x1Data = x1.Data();
    const double* g0Data = g0.Data();
    const double* g1Data = g1.Data();
    auto result = std::make_shared<cpu::LbfgsPairProducts>();
    return Job::start(
        env, Napi::Object::New(env), {s, y, x0, x1, g0, g1},
        [=] { *result = cpu::lbfgsPair(sData, yData, x0Data, x1Data, g0Data, g1Data, n, threads); },
        [result](Napi::Env e) -> Napi::Value {
          return numbersObject(e, {{"sy", result->sy}, {"ss", result->ss}, {"yy", result->yy}});
        },
        [] {});
  });
}

Napi::Value cosineSimilarity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t aRows = countArg(info, 1, "aRows");
    const int64_t bRows = countArg(info, 3, "bRows");
    const int64_t cols = countArg(info, 4, "cols");
    const int threads = threadsArg(info, 6);
    Napi::Float32Array a = floatsArg(info, 0, "a", elementCount(aRows, cols, "aRows"));
    Napi::Float32Array b = floatsArg(info, 2, "b", elementCount(bRows, cols, "bRows"));
    Napi::Float32Array out = floatsArg(info, 5, "out", elementCount(aRows, bRows, "aRows"));
    // Unit-norm copies of both inputs and the packed right operand.
    checkMemory(static_cast<uint64_t>(aRows + 2 * bRows) * static_cast<uint64_t>(cols) * sizeof(float),
                "Cosine similarities of " + std::to_string(aRows) + " by " + std::to_string(bRows) + " rows");
    cpu::cosineSimilarity(a.Data(), aRows, b.Data(), bRows, cols, out.Data(), threads);
    return env.Undefined();
  });
}

// Copies rows rowIds[i] of source [rows, cols] to row i of out, on the main thread: fit cuts
// each batch of a Matrix this way while an earlier step runs. One memcpy a row beats a
// TypedArray.set a row (4096 rows of 768 into a warm buffer: 1.8 against 2.6 ms on an H100
// machine's Xeon host, 4.8 against 6.1 ms on a 2-core EPYC VM).
Napi::Value gatherRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t cols = countArg(info, 1, "cols");
    if (cols < 1) throwRangeError("Expected cols >= 1");
    Napi::Float32Array source = floatsArg(info, 0, "source", cols);
    const int64_t rows = static_cast<int64_t>(source.ElementLength()) / cols;
    Napi::Int32Array rowIds = intsArg(info, 2, "rowIds", 0);
    const int64_t count = static_cast<int64_t>(rowIds.ElementLength());
    Napi::Float32Array out = floatsArg(info, 3, "out", elementCount(count, cols, "rowIds.length"));
    const int32_t* ids = rowIds.Data();
    for (int64_t i = 0; i < count; ++i) {
      if (ids[i] < 0 || ids[i] >= rows) {
        throwRangeError("Expected rowIds in [0, " + std::to_string(rows) + "), got " + std::to_string(ids[i]) +
                        " at " + std::to_string(i));
      }
    }
    const float* from = source.Data();
    float* to = out.Data();
    for (int64_t i = 0; i < count; ++i) {
      std::memcpy(to + i * cols, from + static_cast<int64_t>(ids[i]) * cols, static_cast<size_t>(cols) * sizeof(float));
    }
    return env.Undefined();
  });
}

}  // namespace

void registerMatrixFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, matmul, "matmul"));
  exports.Set("lbfgsDirection", Napi::Function::New(env, lbfgsDirection, "lbfgsDirection"));
  exports.Set("lbfgsSteepest", Napi::Function::New(env, lbfgsSteepest, "lbfgsSteepest"));
  exports.Set("lbfgsStep", Napi::Function::New(env, lbfgsStep, "lbfgsStep"));
  exports.Set("lbfgsSlope", Napi::Function::New(env, lbfgsSlope, "lbfgsSlope"));
  exports.Set("lbfgsPair", Napi::Function::New(env, lbfgsPair, "lbfgsPair"));
  exports.Set("cosineSimilarity", Napi::Function::New(env, cosineSimilarity, "cosineSimilarity"));
  exports.Set("gatherRows", Napi::Function::New(env, gatherRows, "gatherRows"));
}

}  // namespace saekit::binding
