// toySample(spec, first, count, x, codes | null): fills samples [first, first + count) of the
// stream that spec describes, synchronously; toySampleAsync(spec, first, count, x) does the
// same off the main thread and resolves when x is filled. The generator keeps no state: lib/
// owns the stream position and private copies of every array in the spec.
//
// spec: { dim, numFeatures, features: Float32Array, probabilities: Float64Array, rank,
//         loadings: Float32Array | null, thresholds: Float64Array | null, noise,
//         magnitude: 'uniform' | 'exponential' | 'constant', seed, threads }
#include "toy_binding.h"

#include <cmath>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../core/normal.h"
#include "../core/toy.h"
#include "args.h"
#include "backend_wrap.h"
#include "job.h"

namespace saekit::binding {
namespace {

int64_t countField(const Napi::Object& object, const char* name, double max) {
  const double value = numberField(object, name);
  if (!(value >= 0 && value <= max) || std::floor(value) != value) {
    throwRangeError(std::string("Expected integer in [0, ") + std::to_string(static_cast<int64_t>(max)) + "] for " + name);
  }
  return static_cast<int64_t>(value);
}

template <class Array>
Array typedField(Napi::Value value, const char* name, int64_t length, napi_typedarray_type type, const char* typeName) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    throwTypeError(std::string("Expected ") + typeName + " for " + name);
  }
  Array array = value.As<Array>();
  if (static_cast<int64_t>(array.ElementLength()) != length) {
    throwRangeError(std::string("Expected ") + std::to_string(length) + " elements in " + name + " but received " +
                    std::to_string(array.ElementLength()));
  }
  return array;
}

struct ParsedSpec {
  ToySpec spec;
  int threads = 1;
  std::vector<Napi::Value> arrays;  // what the spec points into
};

ParsedSpec parseSpec(const Napi::Object& object) {
  ParsedSpec parsed;
  ToySpec& spec = parsed.spec;
  // Every field is read (a getter runs JS) before any array's memory is taken, so that no
  // getter can detach an array whose pointer is already held.
  spec.dim = countField(object, "dim", 2147483647.0);
  spec.numFeatures = countField(object, "numFeatures", 2147483647.0);
  if (spec.dim < 1 || spec.numFeatures < 1) throwRangeError("Expected dim and numFeatures of at least 1");
  spec.rank = countField(object, "rank", 1e6);
  const Napi::Value featuresValue = object.Get("features");
  const Napi::Value probabilitiesValue = object.Get("probabilities");
  const Napi::Value loadingsValue = spec.rank > 0 ? object.Get("loadings") : Napi::Value();
  const Napi::Value thresholdsValue = spec.rank > 0 ? object.Get("thresholds") : Napi::Value();
  spec.noise = numberField(object, "noise");
  Napi::Value magnitude = object.Get("magnitude");
  const std::string kind = magnitude.IsString() ? magnitude.As<Napi::String>().Utf8Value() : "";
  if (kind == "uniform") {
    spec.magnitude = ToyMagnitude::Uniform;
  } else if (kind == "exponential") {
    spec.magnitude = ToyMagnitude::Exponential;
  } else if (kind == "constant") {
    spec.magnitude = ToyMagnitude::Constant;
  } else {
    throwRangeError("Expected 'uniform', 'exponential' or 'constant' for magnitude");
  }
  spec.seed = static_cast<uint64_t>(countField(object, "seed", 9007199254740991.0));
  parsed.threads = static_cast<int>(countField(object, "threads", 1024));
  if (parsed.threads < 1) throwRangeError("Expected threads in [1, 1024]");
  auto features = typedField<Napi::Float32Array>(featuresValue, "features", spec.dim * spec.numFeatures,
                                                 napi_float32_array, "Float32Array");
  auto probabilities =
      typedField<Napi::Float64Array>(probabilitiesValue, "probabilities", spec.numFeatures, napi_float64_array, "Float64Array");
  spec.features = features.Data();
  spec.probabilities = probabilities.Data();
  parsed.arrays = {features, probabilities};
  if (spec.rank > 0) {
    auto loadings = typedField<Napi::Float32Array>(loadingsValue, "loadings", spec.numFeatures * spec.rank,
                                                   napi_float32_array, "Float32Array");
    auto thresholds =
        typedField<Napi::Float64Array>(thresholdsValue, "thresholds", spec.numFeatures, napi_float64_array, "Float64Array");
    spec.loadings = loadings.Data();
    spec.thresholds = thresholds.Data();
    parsed.arrays.push_back(loadings);
    parsed.arrays.push_back(thresholds);
  }
  checkToySpec(spec);
  return parsed;
}

Napi::Value toySample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const ParsedSpec parsed = parseSpec(objectArg(info, 0, "spec"));
    const int64_t first = countArg(info, 1, "first");
    const int64_t count = countArg(info, 2, "count");
    Napi::Float32Array x = floatsArg(info, 3, "x", elementCount(count, parsed.spec.dim, "count"));
    float* codes = nullptr;
    if (info.Length() > 4 && !info[4].IsNull() && !info[4].IsUndefined()) {
      codes = floatsArg(info, 4, "codes", elementCount(count, parsed.spec.numFeatures, "count")).Data();
    }
    generateToySamplesCpu(parsed.spec, first, count, x.Data(), codes, parsed.threads);
    return env.Undefined();
  });
}

Napi::Value toySampleAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object specObject = objectArg(info, 0, "spec");
    ParsedSpec parsed = parseSpec(specObject);
    const int64_t first = countArg(info, 1, "first");
    const int64_t count = countArg(info, 2, "count");
    Napi::Float32Array x = floatsArg(info, 3, "x", elementCount(count, parsed.spec.dim, "count"));
    parsed.arrays.push_back(x);
    const ToySpec spec = parsed.spec;
    const int threads = parsed.threads;
    float* out = x.Data();
    return Job::start(
        env, specObject, std::move(parsed.arrays),
        [spec, first, count, out, threads] { generateToySamplesCpu(spec, first, count, out, nullptr, threads); },
        [](Napi::Env e) -> Napi::Value { return e.Undefined(); }, [] {});
  });
}

// normalQuantile(p: Float64Array): Float64Array of Phi^-1(p_i).
Napi::Value quantiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Value value = info.Length() > 0 ? info[0] : env.Undefined();
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throwTypeError("Expected Float64Array for p");
    }
    Napi::Float64Array p = value.As<Napi::Float64Array>();
    Napi::Float64Array out = Napi::Float64Array::New(env, p.ElementLength());
    for (size_t i = 0; i < p.ElementLength(); ++i) out[i] = normalQuantile(p[i]);
    return out;
  });
}

}  // namespace

void registerToy(Napi::Env env, Napi::Object exports) {
  exports.Set("toySample", Napi::Function::New(env, toySample, "toySample"));
  exports.Set("toySampleAsync", Napi::Function::New(env, toySampleAsync, "toySampleAsync"));
  exports.Set("normalQuantile", Napi::Function::New(env, quantiles, "normalQuantile"));
}

}  // namespace saekit::binding
