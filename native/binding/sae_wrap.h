// The JS face of a native SaeBackend. Everything here converts, checks and schedules; the
// algorithm lives in native/cpu (and later native/cuda).
#pragma once

#include <napi.h>

#include "../core/sae.h"
#include "backend_wrap.h"

namespace saekit::binding {

class SaeWrap : public BackendWrap<SaeWrap, SaeBackend> {
 public:
  static Napi::Function define(Napi::Env env);

  explicit SaeWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value trainStep(const Napi::CallbackInfo& info);
  Napi::Value stageBatch(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value gradients(const Napi::CallbackInfo& info);
  Napi::Value encode(const Napi::CallbackInfo& info);
  Napi::Value encodeSparse(const Napi::CallbackInfo& info);
  Napi::Value decode(const Napi::CallbackInfo& info);
  Napi::Value decodeSparse(const Napi::CallbackInfo& info);
  Napi::Value reconstruct(const Napi::CallbackInfo& info);
  Napi::Value getParameter(const Napi::CallbackInfo& info);
  Napi::Value setParameter(const Napi::CallbackInfo& info);
  Napi::Value setStepsTaken(const Napi::CallbackInfo& info);
  Napi::Value getTrainingState(const Napi::CallbackInfo& info);
  Napi::Value setTrainingState(const Napi::CallbackInfo& info);
  Napi::Value resample(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);

  // (input: Float32Array, rows, out: Float32Array) => Promise<void> methods, each row of the
  // input mapping to a row of out; codes rows are dHidden wide, others dIn.
  Napi::Value rowsToRows(const Napi::CallbackInfo& info, const char* inputName, bool inputIsCodes,
                         bool outputIsCodes, void (SaeBackend::*method)(const float*, int64_t, float*));

  // The array the last trainStep was given as the next batch, or the last stageBatch staged
  // (BatchStaging in core/sae.h).
  Napi::Reference<Napi::Float32Array> stagedBatch_;
};

}  // namespace saekit::binding
