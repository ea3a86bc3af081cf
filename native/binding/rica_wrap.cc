#include "rica_wrap.h"

#include <memory>
#include <string>

#include "../core/error.h"
#include "args.h"

namespace saekit::binding {
namespace {

Napi::Object statsObject(Napi::Env env, const RicaStats& stats) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("loss", stats.loss);
  object.Set("sparsity", stats.sparsity);
  object.Set("reconstruction", stats.reconstruction);
  object.Set("l0", stats.l0);
  return object;
}

int64_t weightCount(const RicaConfig& config) { return config.dIn * config.dHidden; }

}  // namespace

Napi::Function RicaWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeRica",
                     {
                         InstanceMethod<&RicaWrap::costGradient>("costGradient"),
                         InstanceMethod<&RicaWrap::adamStep>("adamStep"),
                         InstanceMethod<&RicaWrap::encode>("encode"),
                         InstanceMethod<&RicaWrap::getWeights>("getWeights"),
                         InstanceMethod<&RicaWrap::setWeights>("setWeights"),
                         InstanceMethod<&RicaWrap::dictionary>("dictionary"),
                         InstanceMethod("dispose", &RicaWrap::disposeMethod),
                         InstanceAccessor("stepsTaken", &RicaWrap::stepsTakenGetter, nullptr),
                         InstanceAccessor("busy", &RicaWrap::busyGetter, nullptr),
                         InstanceAccessor<&RicaWrap::device>("device"),
                         InstanceAccessor("bytesHeld", &RicaWrap::bytesHeldGetter, nullptr),
                     });
}

RicaWrap::RicaWrap(const Napi::CallbackInfo& info) : BackendWrap(info, "Rica") {
  guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object options = objectArg(info, 0, "options");
    RicaConfig config;
    const ModelBasics basics = modelBasics(options);
    applyBasics(basics, config);
    config.lambda = static_cast<float>(numberField(options, "lambda"));
    config.epsilon = static_cast<float>(numberField(options, "epsilon"));
    if (!(config.lambda >= 0) || !(config.epsilon > 0)) throwRangeError("Expected lambda >= 0 and epsilon > 0");
    config.normalizeRows = boolField(options, "normalizeRows");
    readAdam(options, config);
    if (basics.cuda) {
#ifdef SAEKIT_WITH_CUDA
      adopt(createCudaRica(config));
#else
      throwNoCudaBackend("a Rica", basics);
#endif
    } else {
      adopt(createCpuRica(config));
    }
    return info.Env().Undefined();
  });
}

// costGradient(weights, x, rows, gradientOut, sameX) => Promise<stats>
Napi::Value RicaWrap::costGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const RicaConfig& config = idleBackend(env).config();
    const int64_t rows = countArg(info, 2, "rows");
    Napi::Float32Array weights = floatsArg(info, 0, "weights", weightCount(config));
    Napi::Float32Array x = floatsArg(info, 1, "x.data", elementCount(rows, config.dIn, "rows"));
    Napi::Float32Array gradient = floatsArg(info, 3, "gradient", weightCount(config));
    const bool sameX = boolArg(info, 4, "sameX");
    auto stats = std::make_shared<RicaStats>();
    const float* w = weights.Data();
    const float* data = x.Data();
    float* out = gradient.Data();
    return startJob(
        env, {weights, x, gradient},
        [stats, w, data, rows, out, sameX](RicaBackend& backend) {
          *stats = backend.costGradient(w, data, rows, out, sameX);
        },
        [stats](Napi::Env e) -> Napi::Value { return statsObject(e, *stats); });
  });
}

Napi::Value RicaWrap::adamStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    Napi::Float32Array x = floatsArg(info, 0, "batch.data", elementCount(rows, idleBackend(env).config().dIn, "rows"));
    auto stats = std::make_shared<RicaStats>();
    const float* data = x.Data();
    return startJob(
        env, {x}, [stats, data, rows](RicaBackend& backend) { *stats = backend.adamStep(data, rows); },
        [stats](Napi::Env e) -> Napi::Value { return statsObject(e, *stats); });
  });
}

Napi::Value RicaWrap::encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    const RicaConfig& config = idleBackend(env).config();
    Napi::Float32Array x = floatsArg(info, 0, "x.data", elementCount(rows, config.dIn, "rows"));
    Napi::Float32Array out = floatsArg(info, 2, "out", elementCount(rows, config.dHidden, "rows"));
    const float* data = x.Data();
    float* codes = out.Data();
    return startJob(env, {x, out}, [data, rows, codes](RicaBackend& backend) { backend.encode(data, rows, codes); });
  });
}

Napi::Value RicaWrap::getWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    RicaBackend& backend = idleBackend(env);
    Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(weightCount(backend.config())));
    backend.getWeights(out.Data());
    return out;
  });
}

Napi::Value RicaWrap::setWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    RicaBackend& backend = idleBackend(env);
    Napi::Float32Array values = floatsArg(info, 0, "weights", weightCount(backend.config()));
    backend.setWeights(values.Data());
    return env.Undefined();
  });
}

Napi::Value RicaWrap::dictionary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    RicaBackend& backend = idleBackend(env);
    Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(weightCount(backend.config())));
    backend.dictionary(out.Data());
    return out;
  });
}

Napi::Value RicaWrap::device(const Napi::CallbackInfo& info) {
  const RicaBackend* backend = backendOrNull();
  return Napi::String::New(info.Env(), backend ? backend->device() : "cpu");
}

}  // namespace saekit::binding
