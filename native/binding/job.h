// A unit of native work run off the main thread and settled as a Promise. While it runs it
// holds a reference to its owner (so the model cannot be collected mid-step) and to every
// typed array whose memory it reads or writes.
#pragma once

#include <napi.h>

#include <functional>
#include <vector>

#include "js_error.h"

namespace saekit::binding {

class Job : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Result = std::function<Napi::Value(Napi::Env)>;
  using Settled = std::function<void()>;

  // `work` runs on a worker thread; `result` and `settled` on the main thread, `settled`
  // first, whether the work succeeded or not.
  static Napi::Promise start(Napi::Env env, Napi::Object owner, std::vector<Napi::Value> keepAlive,
                             Work work, Result result, Settled settled);

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  Job(Napi::Env env, Work work, Result result, Settled settled);

  Napi::Promise::Deferred deferred_;
  std::vector<Napi::Reference<Napi::Value>> keepAlive_;
  Work work_;
  Result result_;
  Settled settled_;
  ErrorInfo error_;
};

}  // namespace saekit::binding
