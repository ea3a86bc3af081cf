#include "sae_wrap.h"

#include <cmath>
#include <cstring>
#include <string>

#include "../core/error.h"
#include "../core/checks.h"
#include "args.h"
#include "job.h"
#include "js_error.h"

namespace saekit::binding {
namespace {

Napi::Object statsObject(Napi::Env env, const StepStats& stats) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("loss", stats.loss);
  object.Set("mse", stats.mse);
  object.Set("l1", stats.l1);
  object.Set("l0", stats.l0);
  object.Set("auxLoss", stats.auxLoss);
  return object;
}

SaeSlot parseSlot(const Napi::CallbackInfo& info, size_t index) {
  if (index >= info.Length() || info[index].IsUndefined()) return SaeSlot::Value;
  if (!info[index].IsString()) throwTypeError("Expected string for slot");
  const std::string name = info[index].As<Napi::String>().Utf8Value();
  if (name == "value") return SaeSlot::Value;
  if (name == "adamM") return SaeSlot::AdamFirstMoment;
  if (name == "adamV") return SaeSlot::AdamSecondMoment;
  throwRangeError("Unknown slot " + name);
}

SaeParam parseParam(const std::string& name) {
  if (name == "encoderWeights") return SaeParam::EncoderWeights;
  if (name == "encoderBias") return SaeParam::EncoderBias;
  if (name == "decoderWeights") return SaeParam::DecoderWeights;
  if (name == "decoderBias") return SaeParam::DecoderBias;
  throwRangeError("Unknown parameter " + name);
}

int64_t paramLength(const SaeConfig& config, SaeParam which) {
  switch (which) {
    case SaeParam::EncoderWeights:
    case SaeParam::DecoderWeights:
      return config.dIn * config.dHidden;
    case SaeParam::EncoderBias:
      return config.dHidden;
    case SaeParam::DecoderBias:
      return config.dIn;
  }
  return 0;
}

}  // namespace

Napi::Function SaeWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeSparseAutoencoder",
                     {
                         InstanceMethod<&SaeWrap::trainStep>("trainStep"),
                         InstanceMethod<&SaeWrap::stageBatch>("stageBatch"),
                         InstanceMethod<&SaeWrap::gradients>("gradients"),
                         InstanceMethod<&SaeWrap::encode>("encode"),
                         InstanceMethod<&SaeWrap::encodeSparse>("encodeSparse"),
                         InstanceMethod<&SaeWrap::decode>("decode"),
                         InstanceMethod<&SaeWrap::decodeSparse>("decodeSparse"),
                         InstanceMethod<&SaeWrap::reconstruct>("reconstruct"),
                         InstanceMethod<&SaeWrap::getParameter>("getParameter"),
                         InstanceMethod<&SaeWrap::setParameter>("setParameter"),
                         InstanceMethod<&SaeWrap::setStepsTaken>("setStepsTaken"),
                         InstanceMethod<&SaeWrap::getTrainingState>("getTrainingState"),
                         InstanceMethod<&SaeWrap::setTrainingState>("setTrainingState"),
                         InstanceMethod<&SaeWrap::resample>("resample"),
                         InstanceMethod<&SaeWrap::dispose>("dispose"),
                         InstanceAccessor("stepsTaken", &SaeWrap::stepsTakenGetter, nullptr),
                         InstanceAccessor("busy", &SaeWrap::busyGetter, nullptr),
                         InstanceAccessor<&SaeWrap::device>("device"),
                         InstanceAccessor("bytesHeld", &SaeWrap::bytesHeldGetter, nullptr),
                     });
}

SaeWrap::SaeWrap(const Napi::CallbackInfo& info) : BackendWrap(info, "SparseAutoencoder") {
  guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object options = objectArg(info, 0, "options");
    SaeConfig config;
    const ModelBasics basics = modelBasics(options);
    applyBasics(basics, config);
    config.tied = boolField(options, "tied");
    config.applyBDecToInput = boolField(options, "applyBDecToInput");
    Napi::Value activation = options.Get("activation");
    const std::string name = activation.IsString() ? activation.As<Napi::String>().Utf8Value() : "relu";
    if (name == "topk") config.activation = Activation::TopK;
    else if (name == "batchtopk") config.activation = Activation::BatchTopK;
    else if (name != "relu") throwRangeError("Unknown activation " + name);
    if (options.Get("auxK").IsNumber()) {
      config.auxK = static_cast<int64_t>(numberField(options, "auxK"));
      config.auxKCoeff = static_cast<float>(numberField(options, "auxKCoeff"));
      config.auxKWindow = static_cast<int64_t>(numberField(options, "auxKWindow"));
      if (config.auxK < 0 || !(config.auxKCoeff >= 0) || config.auxKWindow < 1) throwRangeError("Expected auxK >= 0, auxKCoeff >= 0, auxKWindow >= 1");
    }
    if (config.activation != Activation::ReLU) {
      config.k = static_cast<int64_t>(numberField(options, "k"));
      config.thresholdBeta = static_cast<float>(numberField(options, "thresholdBeta"));
      config.thresholdStartStep = static_cast<int64_t>(numberField(options, "thresholdStartStep"));
    }
    config.l1Coeff = static_cast<float>(numberField(options, "l1Coeff"));
    readAdam(options, config);
    Napi::Value precision = options.Get("precision");
    if (precision.IsString() && precision.As<Napi::String>().Utf8Value() == "fp32") config.precision = Precision::FP32;
    if (basics.cuda) {
#ifdef SAEKIT_WITH_CUDA
      adopt(createCudaSae(config));
#else
      throwNoCudaBackend("a SparseAutoencoder", basics);
#endif
    } else {
      adopt(createCpuSae(config));
    }
    return info.Env().Undefined();
  });
}

Napi::Value SaeWrap::rowsToRows(const Napi::CallbackInfo& info, const char* inputName, bool inputIsCodes,
                                bool outputIsCodes,
                                void (SaeBackend::*method)(const float*, int64_t, float*)) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    const SaeConfig& config = idleBackend(env).config();
    Napi::Float32Array input = floatsArg(info, 0, inputName, elementCount(rows, inputIsCodes ? config.dHidden : config.dIn, "rows"));
    Napi::Float32Array out = floatsArg(info, 2, "out", elementCount(rows, outputIsCodes ? config.dHidden : config.dIn, "rows"));
    const float* data = input.Data();
    float* result = out.Data();
    return startJob(env, {input, out}, [method, data, rows, result](SaeBackend& backend) {
      (backend.*method)(data, rows, result);
    });
  });
}

Napi::Value SaeWrap::trainStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    const int64_t dIn = idleBackend(env).config().dIn;
    Napi::Float32Array x = floatsArg(info, 0, "batch.data", elementCount(rows, dIn, "rows"));
    StepOverrides overrides;
    if (info.Length() > 2 && info[2].IsNumber()) overrides.lr = static_cast<float>(info[2].As<Napi::Number>().DoubleValue());
    if (info.Length() > 3 && info[3].IsNumber()) overrides.l1Coeff = static_cast<float>(info[3].As<Napi::Number>().DoubleValue());
    std::vector<Napi::Value> keepAlive{x};
    BatchStaging staging;
    // The backend trusts `staged` to mean "the very array passed as next last time": identity,
    // which an address alone does not prove once an array may have been collected.
    staging.staged = !stagedBatch_.IsEmpty() && stagedBatch_.Value().StrictEquals(x);
    Napi::Float32Array next;
    if (info.Length() > 4 && !info[4].IsUndefined()) {
      staging.nextRows = countArg(info, 5, "next rows");
      next = floatsArg(info, 4, "next batch.data", elementCount(staging.nextRows, dIn, "next rows"));
      staging.next = next.Data();
      keepAlive.push_back(next);
    }
    auto stats = std::make_shared<StepStats>();
    const float* data = x.Data();
    Napi::Value promise = startJob(
        env, std::move(keepAlive),
        [stats, data, rows, overrides, staging](SaeBackend& backend) {
          *stats = backend.trainStep(data, rows, overrides, staging);
        },
        [stats](Napi::Env e) -> Napi::Value { return statsObject(e, *stats); });
    stagedBatch_ = next.IsEmpty() ? Napi::Reference<Napi::Float32Array>() : Napi::Persistent(next);
    return promise;
  });
}

// stageBatch(x, rows, scale) => boolean, synchronously: SaeBackend::stageBatch. The next
// trainStep given this very array trains on the copy made here.
Napi::Value SaeWrap::stageBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    SaeBackend& backend = idleBackend(env);
    Napi::Float32Array x = floatsArg(info, 0, "batch.data", elementCount(rows, backend.config().dIn, "rows"));
    const double scale = numberArg(info, 2, "scale");
    if (!(scale > 0.0 && std::isfinite(scale))) throwRangeError("Expected a positive finite number for scale");
    stagedBatch_.Reset();
    const bool staged = backend.stageBatch(x.Data(), rows, scale);
    if (staged) stagedBatch_ = Napi::Persistent(x);
    return Napi::Boolean::New(env, staged);
  });
}

Napi::Value SaeWrap::dispose(const Napi::CallbackInfo& info) {
  stagedBatch_.Reset();  // a batch staged for a step that will not come
  return disposeMethod(info);
}

Napi::Value SaeWrap::gradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    Napi::Float32Array x = floatsArg(info, 0, "batch.data", elementCount(rows, idleBackend(env).config().dIn, "rows"));
    auto stats = std::make_shared<StepStats>();
    auto grads = std::make_shared<SaeGradients>();
    const float* data = x.Data();
    return startJob(
        env, {x}, [stats, grads, data, rows](SaeBackend& backend) { *stats = backend.gradients(data, rows, *grads); },
        [stats, grads](Napi::Env e) -> Napi::Value {
          Napi::Object result = statsObject(e, *stats);
          result.Set("encoderWeights",
                     grads->encoderWeights.size() > 0
                         ? Napi::Value(copyToJs<Napi::Float32Array>(e, grads->encoderWeights))
                         : e.Null());
          result.Set("encoderBias", copyToJs<Napi::Float32Array>(e, grads->encoderBias));
          result.Set("decoderWeights", copyToJs<Napi::Float32Array>(e, grads->decoderWeights));
          result.Set("decoderBias", copyToJs<Napi::Float32Array>(e, grads->decoderBias));
          return result;
        });
  });
}

Napi::Value SaeWrap::encode(const Napi::CallbackInfo& info) {
  return rowsToRows(info, "x.data", false, true, &SaeBackend::encode);
}

Napi::Value SaeWrap::decode(const Napi::CallbackInfo& info) {
  return rowsToRows(info, "codes.data", true, false, &SaeBackend::decode);
}

Napi::Value SaeWrap::reconstruct(const Napi::CallbackInfo& info) {
  return rowsToRows(info, "x.data", false, false, &SaeBackend::reconstruct);
}

Napi::Value SaeWrap::encodeSparse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    Napi::Float32Array x = floatsArg(info, 0, "x.data", elementCount(rows, idleBackend(env).config().dIn, "rows"));
    auto codes = std::make_shared<SparseCodes>();
    const float* data = x.Data();
    return startJob(
        env, {x}, [data, rows, codes](SaeBackend& backend) { backend.encodeSparse(data, rows, *codes); },
        [codes](Napi::Env e) -> Napi::Value {
          Napi::Object result = Napi::Object::New(e);
          result.Set("indptr", copyToJs<Napi::Int32Array>(e, codes->indptr));
          result.Set("indices", copyToJs<Napi::Int32Array>(e, codes->indices));
          result.Set("values", copyToJs<Napi::Float32Array>(e, codes->values));
          return result;
        });
  });
}

Napi::Value SaeWrap::decodeSparse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 3, "rows");
    const SaeConfig& config = idleBackend(env).config();
    auto indptr = indexCopyArg(info, 0, "codes.indptr", rows + 1);
    auto indices = indexCopyArg(info, 1, "codes.indices", 0);
    Napi::Float32Array values = floatsArg(info, 2, "codes.values", 0);
    Napi::Float32Array out = floatsArg(info, 4, "out", elementCount(rows, config.dIn, "rows"));
    const int64_t stored = static_cast<int64_t>(std::min(indices->size(), values.ElementLength()));
    SparseCodesView view{rows, config.dHidden, indptr->data(), indices->data(), values.Data()};
    checkSparseCodes(view, config.dHidden, stored);
    float* result = out.Data();
    return startJob(env, {values, out}, [view, result, indptr, indices](SaeBackend& backend) {
      backend.decodeSparse(view, result);
    });
  });
}

Napi::Value SaeWrap::getParameter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throwTypeError("Expected string for name");
    const SaeParam which = parseParam(info[0].As<Napi::String>().Utf8Value());
    const SaeSlot slot = parseSlot(info, 1);
    SaeBackend& backend = idleBackend(env);
    Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(paramLength(backend.config(), which)));
    backend.getParameter(which, slot, out.Data());
    return out;
  });
}

Napi::Value SaeWrap::setParameter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throwTypeError("Expected string for name");
    const SaeParam which = parseParam(info[0].As<Napi::String>().Utf8Value());
    const SaeSlot slot = parseSlot(info, 2);
    SaeBackend& backend = idleBackend(env);
    Napi::Float32Array values = floatsArg(info, 1, "values", paramLength(backend.config(), which));
    backend.setParameter(which, slot, values.Data());
    return env.Undefined();
  });
}

Napi::Value SaeWrap::setStepsTaken(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t steps = countArg(info, 0, "steps");
    idleBackend(env).setStepsTaken(steps);
    return env.Undefined();
  });
}

Napi::Value SaeWrap::getTrainingState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    SaeBackend& backend = idleBackend(env);
    const int64_t m = backend.config().dHidden;
    std::vector<int64_t> lastFired(static_cast<size_t>(m));
    backend.lastFired(lastFired.data());
    Napi::Float64Array fired = Napi::Float64Array::New(env, static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j) fired.Data()[j] = static_cast<double>(lastFired[j]);
    Napi::Object state = Napi::Object::New(env);
    state.Set("samplesSeen", static_cast<double>(backend.samplesSeen()));
    state.Set("lastFired", fired);
    state.Set("threshold", backend.threshold());
    return state;
  });
}

Napi::Value SaeWrap::setTrainingState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    SaeBackend& backend = idleBackend(env);
    const int64_t m = backend.config().dHidden;
    const int64_t samplesSeen = countArg(info, 0, "samplesSeen");
    if (info.Length() < 2 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        static_cast<int64_t>(info[1].As<Napi::Float64Array>().ElementLength()) != m) {
      throwTypeError("Expected Float64Array of length dHidden for lastFired");
    }
    const double threshold = numberArg(info, 2, "threshold");
    Napi::Float64Array fired = info[1].As<Napi::Float64Array>();
    std::vector<int64_t> lastFired(static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j) {
      const double v = fired.Data()[j];
      if (!(v >= -1 && v <= static_cast<double>(samplesSeen))) throwRangeError("Expected lastFired values in [-1, samplesSeen]");
      lastFired[j] = static_cast<int64_t>(v);
    }
    backend.setFiringState(samplesSeen, lastFired.data());
    backend.setThreshold(static_cast<float>(threshold));
    return env.Undefined();
  });
}

Napi::Value SaeWrap::resample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 2, "rows");
    const double seed = numberArg(info, 3, "seed");
    const SaeConfig& config = idleBackend(env).config();
    auto features = indexCopyArg(info, 0, "features", 0);
    Napi::Float32Array x = floatsArg(info, 1, "x.data", elementCount(rows, config.dIn, "rows"));
    auto resampled = std::make_shared<int64_t>(0);
    const float* data = x.Data();
    return startJob(
        env, {x},
        [resampled, features, data, rows, seed](SaeBackend& backend) {
          *resampled = backend.resample(features->data(), static_cast<int64_t>(features->size()), data, rows,
                                        static_cast<uint64_t>(seed));
        },
        [resampled](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, static_cast<double>(*resampled)); });
  });
}

Napi::Value SaeWrap::device(const Napi::CallbackInfo& info) {
  const SaeBackend* backend = backendOrNull();
  return Napi::String::New(info.Env(), backend ? backend->device() : "cpu");
}

}  // namespace saekit::binding
