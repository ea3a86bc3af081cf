#include "sae_wrap.h"

#include <cstring>
#include <string>

#include "../core/error.h"
#include "../core/checks.h"
#include "args.h"
#include "job.h"
#include "js_error.h"

namespace saekit::binding {
namespace {

// Runs a method body and turns any C++ exception into a JS exception.
template <class Body>
Napi::Value guarded(Napi::Env env, Body body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throwJs(env, describeCurrentException());
  }
}

Napi::Object statsObject(Napi::Env env, const StepStats& stats) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("loss", stats.loss);
  object.Set("mse", stats.mse);
  object.Set("l1", stats.l1);
  object.Set("l0", stats.l0);
  return object;
}

template <class T, class Array>
Array copyToJs(Napi::Env env, const Buffer<T>& buffer) {
  Array array = Array::New(env, buffer.size());
  if (buffer.size() > 0) std::memcpy(array.Data(), buffer.data(), buffer.size() * sizeof(T));
  return array;
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
                         InstanceMethod<&SaeWrap::gradients>("gradients"),
                         InstanceMethod<&SaeWrap::encode>("encode"),
                         InstanceMethod<&SaeWrap::encodeSparse>("encodeSparse"),
                         InstanceMethod<&SaeWrap::decode>("decode"),
                         InstanceMethod<&SaeWrap::decodeSparse>("decodeSparse"),
                         InstanceMethod<&SaeWrap::reconstruct>("reconstruct"),
                         InstanceMethod<&SaeWrap::getParameter>("getParameter"),
                         InstanceMethod<&SaeWrap::setParameter>("setParameter"),
                         InstanceMethod<&SaeWrap::dispose>("dispose"),
                         InstanceAccessor<&SaeWrap::stepsTaken>("stepsTaken"),
                         InstanceAccessor<&SaeWrap::busy>("busy"),
                         InstanceAccessor<&SaeWrap::device>("device"),
                     });
}

SaeWrap::SaeWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SaeWrap>(info), env_(info.Env()) {
  guarded(env_, [&]() -> Napi::Value {
    Napi::Object options = objectArg(info, 0, "options");
    SaeConfig config;
    const double dIn = numberField(options, "dIn");
    const double dHidden = numberField(options, "dHidden");
    if (!(dIn >= 1 && dIn < 2147483648.0) || !(dHidden >= 1 && dHidden < 2147483648.0)) {
      throwRangeError("Expected dIn and dHidden in [1, 2^31)");
    }
    config.dIn = static_cast<int64_t>(dIn);
    config.dHidden = static_cast<int64_t>(dHidden);
    config.tied = boolField(options, "tied");
    config.l1Coeff = static_cast<float>(numberField(options, "l1Coeff"));
    config.lr = static_cast<float>(numberField(options, "lr"));
    config.beta1 = static_cast<float>(numberField(options, "beta1"));
    config.beta2 = static_cast<float>(numberField(options, "beta2"));
    config.eps = static_cast<float>(numberField(options, "eps"));
    config.seed = static_cast<uint64_t>(numberField(options, "seed"));
    const double threads = numberField(options, "threads");
    if (!(threads >= 1 && threads <= 1024)) throwRangeError("Expected threads in [1, 1024]");
    config.threads = static_cast<int>(threads);
    Napi::Value kernels = options.Get("cpuKernels");
    if (kernels.IsString()) config.cpuKernels = kernels.As<Napi::String>().Utf8Value();
    backend_ = createCpuSae(config);
    reportMemory();
    return env_.Undefined();
  });
}

SaeWrap::~SaeWrap() { release(); }

void SaeWrap::reportMemory() {
  const int64_t bytes = backend_ ? static_cast<int64_t>(backend_->bytesHeld()) : 0;
  if (bytes != reportedBytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(env_, bytes - reportedBytes_);
    reportedBytes_ = bytes;
  }
}

void SaeWrap::release() {
  backend_.reset();
  reportMemory();
}

SaeBackend& SaeWrap::idleBackend(Napi::Env env) {
  if (!backend_ || disposeRequested_) {
    throwJs(env, {ErrorKind::Error, "ERR_DISPOSED", "SparseAutoencoder is disposed"});
  }
  if (busy_) {
    throwJs(env, {ErrorKind::Error, "BUSY",
                  "SparseAutoencoder is busy: a step is running; wait for it to finish"});
  }
  return *backend_;
}

SaeBackend& SaeWrap::claim(Napi::Env env) {
  SaeBackend& backend = idleBackend(env);
  busy_ = true;
  return backend;
}

void SaeWrap::jobSettled() {
  busy_ = false;
  if (disposeRequested_) {
    release();
  } else {
    reportMemory();
  }
}

Napi::Promise SaeWrap::startJob(Napi::Env env, std::vector<Napi::Value> keepAlive,
                               std::function<void(SaeBackend&)> work, Job::Result result) {
  SaeBackend& backend = claim(env);
  return Job::start(
      env, Value(), std::move(keepAlive), [&backend, work = std::move(work)] { work(backend); },
      result ? std::move(result) : [](Napi::Env e) -> Napi::Value { return e.Undefined(); },
      [this] { jobSettled(); });
}

Napi::Value SaeWrap::rowsToRows(const Napi::CallbackInfo& info, const char* inputName, bool inputIsCodes,
                                bool outputIsCodes,
                                void (SaeBackend::*method)(const float*, int64_t, float*)) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    const SaeConfig& config = idleBackend(env).config();
    Napi::Float32Array input = floatsArg(info, 0, inputName, rows * (inputIsCodes ? config.dHidden : config.dIn));
    Napi::Float32Array out = floatsArg(info, 2, "out", rows * (outputIsCodes ? config.dHidden : config.dIn));
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
    Napi::Float32Array x = floatsArg(info, 0, "batch.data", rows * idleBackend(env).config().dIn);
    auto stats = std::make_shared<StepStats>();
    const float* data = x.Data();
    return startJob(
        env, {x}, [stats, data, rows](SaeBackend& backend) { *stats = backend.trainStep(data, rows); },
        [stats](Napi::Env e) -> Napi::Value { return statsObject(e, *stats); });
  });
}

Napi::Value SaeWrap::gradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 1, "rows");
    Napi::Float32Array x = floatsArg(info, 0, "batch.data", rows * idleBackend(env).config().dIn);
    auto stats = std::make_shared<StepStats>();
    auto grads = std::make_shared<SaeGradients>();
    const float* data = x.Data();
    return startJob(
        env, {x}, [stats, grads, data, rows](SaeBackend& backend) { *stats = backend.gradients(data, rows, *grads); },
        [stats, grads](Napi::Env e) -> Napi::Value {
          Napi::Object result = statsObject(e, *stats);
          result.Set("encoderWeights",
                     grads->encoderWeights.size() > 0
                         ? Napi::Value(copyToJs<float, Napi::Float32Array>(e, grads->encoderWeights))
                         : e.Null());
          result.Set("encoderBias", copyToJs<float, Napi::Float32Array>(e, grads->encoderBias));
          result.Set("decoderWeights", copyToJs<float, Napi::Float32Array>(e, grads->decoderWeights));
          result.Set("decoderBias", copyToJs<float, Napi::Float32Array>(e, grads->decoderBias));
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
    Napi::Float32Array x = floatsArg(info, 0, "x.data", rows * idleBackend(env).config().dIn);
    auto codes = std::make_shared<SparseCodes>();
    const float* data = x.Data();
    return startJob(
        env, {x}, [data, rows, codes](SaeBackend& backend) { backend.encodeSparse(data, rows, *codes); },
        [codes](Napi::Env e) -> Napi::Value {
          Napi::Object result = Napi::Object::New(e);
          result.Set("indptr", copyToJs<int32_t, Napi::Int32Array>(e, codes->indptr));
          result.Set("indices", copyToJs<int32_t, Napi::Int32Array>(e, codes->indices));
          result.Set("values", copyToJs<float, Napi::Float32Array>(e, codes->values));
          return result;
        });
  });
}

Napi::Value SaeWrap::decodeSparse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t rows = countArg(info, 3, "rows");
    const SaeConfig& config = idleBackend(env).config();
    Napi::Int32Array indptr = intsArg(info, 0, "codes.indptr", rows + 1);
    Napi::Int32Array indices = intsArg(info, 1, "codes.indices", 0);
    Napi::Float32Array values = floatsArg(info, 2, "codes.values", 0);
    Napi::Float32Array out = floatsArg(info, 4, "out", rows * config.dIn);
    const int64_t stored = static_cast<int64_t>(std::min(indices.ElementLength(), values.ElementLength()));
    SparseCodesView view{rows, config.dHidden, indptr.Data(), indices.Data(), values.Data()};
    checkSparseCodes(view, config.dHidden, stored);
    float* result = out.Data();
    return startJob(env, {indptr, indices, values, out},
                    [view, result](SaeBackend& backend) { backend.decodeSparse(view, result); });
  });
}

Napi::Value SaeWrap::getParameter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throwTypeError("Expected string for name");
    const SaeParam which = parseParam(info[0].As<Napi::String>().Utf8Value());
    SaeBackend& backend = idleBackend(env);
    Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(paramLength(backend.config(), which)));
    backend.getParameter(which, out.Data());
    return out;
  });
}

Napi::Value SaeWrap::setParameter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throwTypeError("Expected string for name");
    const SaeParam which = parseParam(info[0].As<Napi::String>().Utf8Value());
    SaeBackend& backend = idleBackend(env);
    Napi::Float32Array values = floatsArg(info, 1, "values", paramLength(backend.config(), which));
    backend.setParameter(which, values.Data());
    return env.Undefined();
  });
}

Napi::Value SaeWrap::dispose(const Napi::CallbackInfo& info) {
  disposeRequested_ = true;
  if (!busy_) release();
  return info.Env().Undefined();
}

Napi::Value SaeWrap::stepsTaken(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), backend_ ? static_cast<double>(backend_->stepsTaken()) : 0.0);
}

Napi::Value SaeWrap::busy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), busy_); }

Napi::Value SaeWrap::device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), backend_ ? backend_->device() : "cpu");
}

}  // namespace saekit::binding
