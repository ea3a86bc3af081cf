#include "js_error.h"

#include <new>

namespace saekit::binding {

ErrorInfo describeCurrentException() {
  ErrorInfo info;
  try {
    throw;
  } catch (const saekit::Error& e) {
    info.kind = e.kind();
    info.code = e.code();
    info.message = e.what();
  } catch (const std::bad_alloc&) {
    info.code = "ERR_OUT_OF_MEMORY";
    info.message = "Out of memory: the native allocation failed; use a smaller batch or model";
  } catch (const std::exception& e) {
    info.code = "ERR_NATIVE";
    info.message = std::string("Native error: ") + e.what();
  } catch (...) {
    info.code = "ERR_NATIVE";
    info.message = "Native error of unknown type";
  }
  return info;
}

Napi::Error makeError(Napi::Env env, const ErrorInfo& info) {
  Napi::Error error;
  switch (info.kind) {
    case ErrorKind::TypeError:
      error = Napi::TypeError::New(env, info.message);
      break;
    case ErrorKind::RangeError:
      error = Napi::RangeError::New(env, info.message);
      break;
    default:
      error = Napi::Error::New(env, info.message);
      break;
  }
  if (!info.code.empty()) error.Set("code", Napi::String::New(env, info.code));
  return error;
}

void throwJs(Napi::Env env, const ErrorInfo& info) { throw makeError(env, info); }

}  // namespace saekit::binding
