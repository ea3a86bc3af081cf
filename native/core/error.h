// Errors that cross into JavaScript. Native code throws these instead of aborting;
// the binding maps `kind` to the JS error class and `code` (if any) to `error.code`. Type
// and range errors carry no code: like the checks in lib/validate.ts, their class says it.
#pragma once

#include <stdexcept>
#include <string>

namespace saekit {

enum class ErrorKind { Error, TypeError, RangeError };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string code, const std::string& message)
      : std::runtime_error(message), kind_(kind), code_(std::move(code)) {}

  ErrorKind kind() const { return kind_; }
  const std::string& code() const { return code_; }

 private:
  ErrorKind kind_;
  std::string code_;
};

[[noreturn]] inline void throwRangeError(const std::string& message) {
  throw Error(ErrorKind::RangeError, "", message);
}

[[noreturn]] inline void throwTypeError(const std::string& message) {
  throw Error(ErrorKind::TypeError, "", message);
}

[[noreturn]] inline void throwError(const std::string& code, const std::string& message) {
  throw Error(ErrorKind::Error, code, message);
}

}  // namespace saekit
