// The JS face of a native RicaBackend: converts, checks and schedules; the algorithm lives in
// native/cpu/rica_cpu.cc and native/cuda/rica_cuda.cu, the L-BFGS optimizer in lib/lbfgs.ts.
#pragma once

#include <napi.h>

#include "../core/rica.h"
#include "backend_wrap.h"

namespace saekit::binding {

class RicaWrap : public BackendWrap<RicaWrap, RicaBackend> {
 public:
  static Napi::Function define(Napi::Env env);

  explicit RicaWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value costGradient(const Napi::CallbackInfo& info);
  Napi::Value adamStep(const Napi::CallbackInfo& info);
  Napi::Value encode(const Napi::CallbackInfo& info);
  Napi::Value getWeights(const Napi::CallbackInfo& info);
  Napi::Value setWeights(const Napi::CallbackInfo& info);
  Napi::Value dictionary(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
};

}  // namespace saekit::binding
