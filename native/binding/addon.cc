// Module entry. Context-aware (NODE_API_MODULE with per-environment class registration), so
// the addon loads in worker threads as well as the main thread.
#include <napi.h>

#include "../core/checks.h"
#include "../core/memory.h"
#include "../cpu/kernels.h"
#include "js_error.h"
#include "matrix_functions.h"
#include "rica_wrap.h"
#include "sae_wrap.h"
#include "toy_binding.h"
#include "fista_wrap.h"
#ifdef SAEKIT_WITH_CUDA
#include "../cuda/status.h"
#endif

namespace saekit::binding {
namespace {

Napi::Value backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = Napi::Array::New(env, 2);
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("name", "cpu");
  cpu.Set("built", true);
  cpu.Set("available", true);
  list.Set(0u, cpu);
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("name", "cuda");
#ifdef SAEKIT_WITH_CUDA
  const cuda::CudaStatus& status = cuda::cudaStatus();
  cuda.Set("built", true);
  cuda.Set("available", status.available);
  if (status.available) {
    cuda.Set("gpu", status.gpu);
    Napi::Array gpus = Napi::Array::New(env, status.gpus.size());
    for (size_t i = 0; i < status.gpus.size(); ++i) gpus.Set(static_cast<uint32_t>(i), status.gpus[i]);
    cuda.Set("gpus", gpus);
  } else {
    cuda.Set("cause", status.cause);
    cuda.Set("reason", status.reason);
  }
#else
  cuda.Set("built", false);
  cuda.Set("available", false);
  cuda.Set("cause", "not-built");
  cuda.Set("reason",
           "not built: this installation of saekit was compiled without CUDA (no nvcc and cmake at install time, "
           "SAEKIT_CUDA=0, or a failed CUDA build)");
#endif
  list.Set(1u, cuda);
  return list;
}

Napi::Value cpuKernels(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), cpu::kernels().name);
}

Napi::Value cpuKernelSets(const Napi::CallbackInfo& info) {
  const auto sets = cpu::availableKernels();
  Napi::Array names = Napi::Array::New(info.Env(), sets.size());
  for (size_t i = 0; i < sets.size(); ++i) names.Set(static_cast<uint32_t>(i), sets[i]->name);
  return names;
}

// checkFinite(data: Float32Array, cols: number, name: string): throws a RangeError at the
// first NaN or infinity. Used on a whole training set before the first step.
Napi::Value checkFiniteValues(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array || !info[1].IsNumber() ||
      !info[2].IsString()) {
    Napi::TypeError::New(env, "Expected (Float32Array, number, string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Float32Array data = info[0].As<Napi::Float32Array>();
  const int64_t count = static_cast<int64_t>(data.ElementLength());
  const int64_t bad = cpu::kernels().firstNonFinite(data.Data(), count);
  if (bad < count) {
    try {
      throwNonFinite(info[2].As<Napi::String>().Utf8Value(), data.Data()[bad], bad,
                     static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue()));
    } catch (...) {
      throwJs(env, describeCurrentException());
    }
  }
  return env.Undefined();
}

Napi::Value availableMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(availableMemoryBytes()));
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeSparseAutoencoder", SaeWrap::define(env));
  exports.Set("NativeRica", RicaWrap::define(env));
  exports.Set("NativeFista", FistaWrap::define(env));
  exports.Set("backends", Napi::Function::New(env, backends, "backends"));
  exports.Set("cpuKernels", Napi::Function::New(env, cpuKernels, "cpuKernels"));
  exports.Set("cpuKernelSets", Napi::Function::New(env, cpuKernelSets, "cpuKernelSets"));
  exports.Set("checkFinite", Napi::Function::New(env, checkFiniteValues, "checkFinite"));
  exports.Set("availableMemory", Napi::Function::New(env, availableMemory, "availableMemory"));
  registerToy(env, exports);
  registerMatrixFunctions(env, exports);
  return exports;
}

}  // namespace saekit::binding

static Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  return saekit::binding::init(env, exports);
}

NODE_API_MODULE(saekit, initAddon)
