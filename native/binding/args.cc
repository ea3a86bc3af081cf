#include "args.h"

#include <cmath>
#include <string>

#include "../core/error.h"

namespace saekit::binding {
namespace {

Napi::Value argAt(const Napi::CallbackInfo& info, size_t index) {
  return index < info.Length() ? info[index] : info.Env().Undefined();
}

}  // namespace

Napi::Object objectArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = argAt(info, index);
  if (!value.IsObject()) throwTypeError(std::string("Expected object for ") + name);
  return value.As<Napi::Object>();
}

double numberArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = argAt(info, index);
  if (!value.IsNumber()) throwTypeError(std::string("Expected number for ") + name);
  return value.As<Napi::Number>().DoubleValue();
}

int64_t countArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  const double value = numberArg(info, index, name);
  if (!(value >= 0 && value <= 9007199254740991.0) || std::floor(value) != value) {
    throwRangeError(std::string("Expected non-negative integer for ") + name);
  }
  return static_cast<int64_t>(value);
}

int64_t elementCount(int64_t rows, int64_t cols, const char* rowsName) {
  constexpr int64_t kMaxElements = 9007199254740991;  // 2^53 - 1
  if (rows < 0 || cols < 0 || (cols > 0 && rows > kMaxElements / cols)) {
    throwRangeError(std::string("Expected ") + rowsName + " x " + std::to_string(cols) + " to be at most 2^53 - 1 elements but received " +
                    rowsName + " " + std::to_string(rows));
  }
  return rows * cols;
}

bool boolArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = argAt(info, index);
  if (!value.IsBoolean()) throwTypeError(std::string("Expected boolean for ") + name);
  return value.As<Napi::Boolean>().Value();
}

template <class Array>
Array typedArrayArg(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t length,
                    napi_typedarray_type type, const char* typeName) {
  Napi::Value value = argAt(info, index);
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    throwTypeError(std::string("Expected ") + typeName + " for " + name);
  }
  Array array = value.As<Array>();
  if (static_cast<int64_t>(array.ElementLength()) < length) {
    throwRangeError(std::string("Expected at least ") + std::to_string(length) + " elements in " + name +
                    " but received " + std::to_string(array.ElementLength()));
  }
  return array;
}

Napi::Float32Array floatsArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                             int64_t length) {
  return typedArrayArg<Napi::Float32Array>(info, index, name, length, napi_float32_array, "Float32Array");
}

Napi::Float64Array doublesArg(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t length) {
  return typedArrayArg<Napi::Float64Array>(info, index, name, length, napi_float64_array, "Float64Array");
}

Napi::Int32Array intsArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                         int64_t length) {
  return typedArrayArg<Napi::Int32Array>(info, index, name, length, napi_int32_array, "Int32Array");
}

std::shared_ptr<std::vector<int32_t>> indexCopyArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                                                  int64_t length) {
  Napi::Int32Array array = intsArg(info, index, name, length);
  return std::make_shared<std::vector<int32_t>>(array.Data(), array.Data() + array.ElementLength());
}

double numberField(const Napi::Object& object, const char* name) {
  Napi::Value value = object.Get(name);
  if (!value.IsNumber()) throwTypeError(std::string("Expected number for ") + name);
  return value.As<Napi::Number>().DoubleValue();
}

bool boolField(const Napi::Object& object, const char* name) {
  Napi::Value value = object.Get(name);
  if (!value.IsBoolean()) throwTypeError(std::string("Expected boolean for ") + name);
  return value.As<Napi::Boolean>().Value();
}

ModelBasics modelBasics(const Napi::Object& options) {
  const double dIn = numberField(options, "dIn");
  const double dHidden = numberField(options, "dHidden");
  if (!(dIn >= 1 && dIn < 2147483648.0) || !(dHidden >= 1 && dHidden < 2147483648.0)) {
    throwRangeError("Expected dIn and dHidden in [1, 2^31)");
  }
  const double seed = numberField(options, "seed");
  if (!(seed >= 0 && seed <= 9007199254740991.0)) throwRangeError("Expected seed in [0, 2^53)");
  const double threads = numberField(options, "threads");
  if (!(threads >= 1 && threads <= 1024)) throwRangeError("Expected threads in [1, 1024]");
  ModelBasics basics{static_cast<int64_t>(dIn), static_cast<int64_t>(dHidden), static_cast<uint64_t>(seed),
                     static_cast<int>(threads), "", false, 0};
  Napi::Value kernels = options.Get("cpuKernels");
  if (kernels.IsString()) basics.cpuKernels = kernels.As<Napi::String>().Utf8Value();
  const Napi::Value device = options.Get("device");
  if (device.IsUndefined()) return basics;
  const char* expected = "Expected device 'cpu', 'cuda' or 'cuda:N' (N a GPU index, below 2^31)";
  if (!device.IsString()) throwTypeError(expected);
  const std::string name = device.As<Napi::String>().Utf8Value();
  if (name == "cpu") return basics;
  basics.cuda = true;
  if (name == "cuda") return basics;
  const std::string digits = name.size() > 5 && name.compare(0, 5, "cuda:") == 0 ? name.substr(5) : "";
  const bool canonical = !digits.empty() && digits.size() <= 10 && (digits.size() == 1 || digits[0] != '0') &&
                         digits.find_first_not_of("0123456789") == std::string::npos;
  if (!canonical || std::stoll(digits) > 2147483647LL) throwRangeError(expected);
  basics.cudaDevice = static_cast<int>(std::stoll(digits));
  return basics;
}

void throwNoCudaBackend(const std::string& what, const ModelBasics& basics) {
  const std::string device = basics.cudaDevice == 0 ? "cuda" : "cuda:" + std::to_string(basics.cudaDevice);
  throwError("BACKEND_UNAVAILABLE", "Cannot create " + what + " on device '" + device + "': this build has no CUDA backend");
}

}  // namespace saekit::binding
