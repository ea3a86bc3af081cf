// Turning C++ failures into JS errors with a class (Error, TypeError, RangeError) and a
// `code` a caller can branch on.
#pragma once

#include <napi.h>

#include <exception>
#include <string>

#include "../core/error.h"

namespace saekit::binding {

struct ErrorInfo {
  ErrorKind kind = ErrorKind::Error;
  std::string code;
  std::string message;
};

// Describes the exception being handled; call inside a catch block.
ErrorInfo describeCurrentException();

Napi::Error makeError(Napi::Env env, const ErrorInfo& info);

// Throws a JS error (as a C++ exception that node-addon-api converts).
[[noreturn]] void throwJs(Napi::Env env, const ErrorInfo& info);

}  // namespace saekit::binding
