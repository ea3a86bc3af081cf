// The JS face of a native FistaBackend, shared by FistaCoder (a fixed dictionary) and
// FistaDictionary (learning). Converts, checks and schedules; the algorithm is in native/cpu.
#pragma once

#include <napi.h>

#include "../core/fista.h"
#include "backend_wrap.h"

namespace saekit::binding {

class FistaWrap : public BackendWrap<FistaWrap, FistaBackend> {
 public:
  static Napi::Function define(Napi::Env env);

  explicit FistaWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value encode(const Napi::CallbackInfo& info);
  Napi::Value learnStep(const Napi::CallbackInfo& info);
  Napi::Value lipschitz(const Napi::CallbackInfo& info);
  Napi::Value forgetCodes(const Napi::CallbackInfo& info);
  Napi::Value getDictionary(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
};

}  // namespace saekit::binding
