#include "fista_wrap.h"

#include <cmath>
#include <memory>
#include <string>

#include "../core/error.h"
#include "args.h"

namespace saekit::binding {
namespace {

// The class name in "<Class> is disposed" and "<Class> is busy" follows the JS class.
const char* className(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Value learning = info[0].As<Napi::Object>().Get("learning");
    if (learning.IsBoolean() && learning.As<Napi::Boolean>().Value()) return "FistaDictionary";
  }
  return "FistaCoder";
}

double nonNegativeField(const Napi::Object& options, const char* name) {
  const double value = numberField(options, name);
  if (!(std::isfinite(value) && value >= 0)) throwRangeError(std::string("Expected non-negative finite number for ") + name);
  return value;
}

}  // namespace

Napi::Function FistaWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeFista",
                     {
                         InstanceMethod<&FistaWrap::encode>("encode"),
                         InstanceMethod<&FistaWrap::learnStep>("learnStep"),
                         InstanceMethod<&FistaWrap::lipschitz>("lipschitz"),
                         InstanceMethod<&FistaWrap::forgetCodes>("forgetCodes"),
                         InstanceMethod<&FistaWrap::getDictionary>("getDictionary"),
                         InstanceMethod("dispose", &FistaWrap::disposeMethod),
                         InstanceAccessor("stepsTaken", &FistaWrap::stepsTakenGetter, nullptr),
                         InstanceAccessor("busy", &FistaWrap::busyGetter, nullptr),
                         InstanceAccessor<&FistaWrap::device>("device"),
                     });
}

// new NativeFista(options, dictionary?: Float32Array): the dictionary [dHidden, dIn] is
// required unless options.learning, which draws it from options.seed.
FistaWrap::FistaWrap(const Napi::CallbackInfo& info) : BackendWrap(info, className(info)) {
  guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object options = objectArg(info, 0, "options");
    FistaConfig config;
    const ModelBasics basics = modelBasics(options);
    applyBasics(basics, config);
    config.lambda = nonNegativeField(options, "lambda");
    const double maxIter = numberField(options, "maxIter");
    if (!(maxIter >= 0 && maxIter < 2147483648.0) || std::floor(maxIter) != maxIter) {
      throwRangeError("Expected maxIter in [0, 2^31)");
    }
    config.maxIter = static_cast<int64_t>(maxIter);
    config.tol = nonNegativeField(options, "tol");
    config.gapTol = nonNegativeField(options, "gapTol");
    config.nonNegative = boolField(options, "nonNegative");
    config.learning = boolField(options, "learning");
    const float* dictionary = nullptr;
    if (!config.learning) dictionary = floatsArg(info, 1, "dictionary.data", config.dIn * config.dHidden).Data();
    if (basics.cuda) {
#ifdef SAEKIT_WITH_CUDA
      adopt(createCudaFista(config, dictionary));
#else
      throwNoCudaBackend(config.learning ? "a FistaDictionary" : "a FistaCoder", basics);
#endif
    } else {
      adopt(createCpuFista(config, dictionary));
    }
    return info.Env().Undefined();
  });
}

// encode(x: Float32Array, rows, init: Float32Array | null, out: Float32Array) resolves to the
// per-row results once codes [rows, dHidden] are in `out`.
Napi::Value FistaWrap::encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    const FistaConfig& config = idleBackend(env).config();
    Napi::Float32Array x = floatsArg(info, 0, "x.data", elementCount(rows, config.dIn, "rows"));
    Napi::Float32Array out = floatsArg(info, 3, "out", elementCount(rows, config.dHidden, "rows"));
    std::vector<Napi::Value> keepAlive{x, out};
    const float* init = nullptr;
    if (info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined()) {
      Napi::Float32Array initArray = floatsArg(info, 2, "options.init.data", elementCount(rows, config.dHidden, "rows"));
      init = initArray.Data();
      keepAlive.push_back(initArray);
    }
    const float* data = x.Data();
    float* codes = out.Data();
    auto results = std::make_shared<FistaRowResults>();
    return startJob(
        env, std::move(keepAlive),
        [data, rows, init, codes, results](FistaBackend& backend) { backend.encode(data, rows, init, codes, *results); },
        [results](Napi::Env e) -> Napi::Value {
          Napi::Object object = Napi::Object::New(e);
          object.Set("iterations", copyToJs<Napi::Int32Array>(e, results->iterations));
          object.Set("objective", copyToJs<Napi::Float64Array>(e, results->objective));
          object.Set("gap", copyToJs<Napi::Float64Array>(e, results->gap));
          object.Set("kkt", copyToJs<Napi::Float64Array>(e, results->kkt));
          object.Set("converged", copyToJs<Napi::Uint8Array>(e, results->converged));
          return object;
        });
  });
}

// learnStep(batch: Float32Array, rows, rowIds: Int32Array | null) resolves to the step's statistics.
Napi::Value FistaWrap::learnStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    if (rows < 1) throwRangeError("Expected positive integer for rows");
    Napi::Float32Array x = floatsArg(info, 0, "batch.data", elementCount(rows, idleBackend(env).config().dIn, "rows"));
    std::shared_ptr<std::vector<int32_t>> rowIds;
    if (info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined()) rowIds = indexCopyArg(info, 2, "rowIds", rows);
    const float* data = x.Data();
    auto stats = std::make_shared<FistaStepStats>();
    return startJob(
        env, {x},
        [data, rows, rowIds, stats](FistaBackend& backend) {
          *stats = backend.learnStep(data, rows, rowIds ? rowIds->data() : nullptr);
        },
        [stats](Napi::Env e) -> Napi::Value {
          Napi::Object object = Napi::Object::New(e);
          object.Set("loss", stats->loss);
          object.Set("mse", stats->mse);
          object.Set("l1", stats->l1);
          object.Set("l0", stats->l0);
          object.Set("iterations", stats->iterations);
          object.Set("maxIterations", static_cast<double>(stats->maxIterations));
          object.Set("resampled", static_cast<double>(stats->resampled));
          return object;
        });
  });
}

Napi::Value FistaWrap::lipschitz(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto value = std::make_shared<double>(0.0);
    return startJob(
        env, {}, [value](FistaBackend& backend) { *value = backend.lipschitz(); },
        [value](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *value); });
  });
}

Napi::Value FistaWrap::forgetCodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    idleBackend(env).forgetCodes();
    return env.Undefined();
  });
}

Napi::Value FistaWrap::getDictionary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    FistaBackend& backend = idleBackend(env);
    const FistaConfig& config = backend.config();
    Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(config.dIn * config.dHidden));
    backend.getDictionary(out.Data());
    return out;
  });
}

Napi::Value FistaWrap::device(const Napi::CallbackInfo& info) {
  const FistaBackend* backend = backendOrNull();
  return Napi::String::New(info.Env(), backend ? backend->device() : "cpu");
}

}  // namespace saekit::binding
