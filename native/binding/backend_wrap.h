// The machinery every native model object shares: ownership of its backend, the busy flag
// that keeps two jobs (or a read and a job) off one model, deferred disposal while a job
// runs, jobs that settle as Promises, and reporting of native memory to V8.
//
//   class FooWrap : public BackendWrap<FooWrap, FooBackend> { ... };
//
// Backend must have `size_t bytesHeld() const` and `int64_t stepsTaken() const`.
#pragma once

#include <napi.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/buffer.h"
#include "job.h"
#include "js_error.h"

namespace saekit::binding {

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

template <class Array, class T>
Array copyToJs(Napi::Env env, const T* data, size_t count) {
  Array array = Array::New(env, count);
  if (count > 0) std::memcpy(array.Data(), data, count * sizeof(T));
  return array;
}

template <class Array, class T>
Array copyToJs(Napi::Env env, const Buffer<T>& buffer) {
  return copyToJs<Array>(env, buffer.data(), buffer.size());
}

template <class Derived, class Backend>
class BackendWrap : public Napi::ObjectWrap<Derived> {
 public:
  BackendWrap(const Napi::CallbackInfo& info, const char* className)
      : Napi::ObjectWrap<Derived>(info), env_(info.Env()), className_(className) {}
  ~BackendWrap() override { release(); }

 protected:
  // Call once from the derived constructor.
  void adopt(std::unique_ptr<Backend> backend) {
    backend_ = std::move(backend);
    reportMemory();
  }

  // Throws unless the model is alive and idle.
  Backend& idleBackend(Napi::Env env) {
    if (!backend_ || disposeRequested_) {
      throwJs(env, {ErrorKind::Error, "ERR_DISPOSED", className_ + " is disposed"});
    }
    if (busy_) {
      throwJs(env, {ErrorKind::Error, "BUSY", className_ + " is busy: a step is running; wait for it to finish"});
    }
    return *backend_;
  }

  // Claims the model and runs `work` off the main thread; the promise resolves to what
  // `result` builds (undefined when it is empty). `keepAlive` are the arrays the work reads
  // or writes.
  Napi::Promise startJob(Napi::Env env, std::vector<Napi::Value> keepAlive, std::function<void(Backend&)> work,
                         Job::Result result = nullptr) {
    Backend& backend = idleBackend(env);
    stepsBeforeJob_ = backend.stepsTaken();
    busy_ = true;
    return Job::start(
        env, this->Value(), std::move(keepAlive), [&backend, work = std::move(work)] { work(backend); },
        result ? std::move(result) : [](Napi::Env e) -> Napi::Value { return e.Undefined(); },
        [this] { jobSettled(); });
  }

  Napi::Value disposeMethod(const Napi::CallbackInfo& info) {
    disposeRequested_ = true;
    if (!busy_) release();
    return info.Env().Undefined();
  }

  Napi::Value busyGetter(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), busy_); }

  // While a job runs, the count from before it: the job's thread may be changing the backend's.
  Napi::Value stepsTakenGetter(const Napi::CallbackInfo& info) {
    const int64_t steps = !backend_ ? 0 : busy_ ? stepsBeforeJob_ : backend_->stepsTaken();
    return Napi::Number::New(info.Env(), static_cast<double>(steps));
  }

  // Native memory held, as reported to V8; while a job runs, what it was before: the job's
  // thread may be resizing the backend's buffers.
  Napi::Value bytesHeldGetter(const Napi::CallbackInfo& info) {
    const int64_t bytes = !backend_ ? 0 : busy_ ? reportedBytes_ : static_cast<int64_t>(backend_->bytesHeld());
    return Napi::Number::New(info.Env(), static_cast<double>(bytes));
  }

  bool alive() const { return backend_ != nullptr; }
  const Backend* backendOrNull() const { return backend_.get(); }

 private:
  void jobSettled() {
    busy_ = false;
    if (disposeRequested_) {
      release();
    } else {
      reportMemory();
    }
  }

  void release() {
    backend_.reset();
    reportMemory();
  }

  void reportMemory() {
    const int64_t bytes = backend_ ? static_cast<int64_t>(backend_->bytesHeld()) : 0;
    if (bytes != reportedBytes_) {
      Napi::MemoryManagement::AdjustExternalMemory(env_, bytes - reportedBytes_);
      reportedBytes_ = bytes;
    }
  }

  Napi::Env env_;
  std::string className_;
  std::unique_ptr<Backend> backend_;
  bool busy_ = false;
  int64_t stepsBeforeJob_ = 0;
  bool disposeRequested_ = false;
  int64_t reportedBytes_ = 0;
};

}  // namespace saekit::binding
