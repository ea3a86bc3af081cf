// The JS face of a native SaeBackend. Everything here converts, checks and schedules; the
// algorithm lives in native/cpu (and later native/cuda).
#pragma once

#include <napi.h>

#include <memory>

#include "../core/sae.h"

namespace saekit::binding {

class SaeWrap : public Napi::ObjectWrap<SaeWrap> {
 public:
  static Napi::Function define(Napi::Env env);

  explicit SaeWrap(const Napi::CallbackInfo& info);
  ~SaeWrap() override;

 private:
  Napi::Value trainStep(const Napi::CallbackInfo& info);
  Napi::Value gradients(const Napi::CallbackInfo& info);
  Napi::Value encode(const Napi::CallbackInfo& info);
  Napi::Value encodeSparse(const Napi::CallbackInfo& info);
  Napi::Value decode(const Napi::CallbackInfo& info);
  Napi::Value decodeSparse(const Napi::CallbackInfo& info);
  Napi::Value reconstruct(const Napi::CallbackInfo& info);
  Napi::Value getParameter(const Napi::CallbackInfo& info);
  Napi::Value setParameter(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value stepsTaken(const Napi::CallbackInfo& info);
  Napi::Value busy(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);

  // Throws unless the model is alive and idle; marks it busy for a job about to start.
  SaeBackend& claim(Napi::Env env);
  SaeBackend& idleBackend(Napi::Env env);
  // Runs on the main thread when a job settles.
  void jobSettled();
  void release();
  void reportMemory();

  Napi::Env env_;
  std::unique_ptr<SaeBackend> backend_;
  bool busy_ = false;
  bool disposeRequested_ = false;
  int64_t reportedBytes_ = 0;
};

}  // namespace saekit::binding
