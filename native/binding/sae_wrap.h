// The JS face of a native SaeBackend. Everything here converts, checks and schedules; the
// algorithm lives in native/cpu (and later native/cuda).
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

#include "../core/sae.h"
#include "job.h"

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

  // Throws unless the model is alive and idle.
  SaeBackend& idleBackend(Napi::Env env);
  // idleBackend, then marks the model busy for a job about to start.
  SaeBackend& claim(Napi::Env env);
  // Claims the model and runs `work` off the main thread; the promise resolves to what
  // `result` builds (undefined when it is empty). `keepAlive` are the arrays the work reads
  // or writes.
  Napi::Promise startJob(Napi::Env env, std::vector<Napi::Value> keepAlive,
                         std::function<void(SaeBackend&)> work, Job::Result result = nullptr);
  // (input: Float32Array, rows, out: Float32Array) => Promise<void> methods, each row of the
  // input mapping to a row of out; codes rows are dHidden wide, others dIn.
  Napi::Value rowsToRows(const Napi::CallbackInfo& info, const char* inputName, bool inputIsCodes,
                         bool outputIsCodes, void (SaeBackend::*method)(const float*, int64_t, float*));
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
