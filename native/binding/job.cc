#include "job.h"

namespace saekit::binding {

Job::Job(Napi::Env env, Work work, Result result, Settled settled)
    : Napi::AsyncWorker(env, "saekit"),
      deferred_(Napi::Promise::Deferred::New(env)),
      work_(std::move(work)),
      result_(std::move(result)),
      settled_(std::move(settled)) {}

Napi::Promise Job::start(Napi::Env env, Napi::Object owner, std::vector<Napi::Value> keepAlive,
                         Work work, Result result, Settled settled) {
  Job* job = new Job(env, std::move(work), std::move(result), std::move(settled));
  job->keepAlive_.push_back(Napi::Persistent(Napi::Value(owner)));
  for (Napi::Value& value : keepAlive) job->keepAlive_.push_back(Napi::Persistent(value));
  Napi::Promise promise = job->deferred_.Promise();
  job->Queue();
  return promise;
}

void Job::Execute() {
  try {
    work_();
  } catch (...) {
    error_ = describeCurrentException();
    SetError(error_.message);
  }
}

void Job::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  settled_();
  try {
    deferred_.Resolve(result_(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    deferred_.Reject(makeError(env, describeCurrentException()).Value());
  }
}

void Job::OnError(const Napi::Error&) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  settled_();
  deferred_.Reject(makeError(env, error_).Value());
}

}  // namespace saekit::binding
