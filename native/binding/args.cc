#include "args.h"

#include <cmath>

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

Napi::Int32Array intsArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                         int64_t length) {
  return typedArrayArg<Napi::Int32Array>(info, index, name, length, napi_int32_array, "Int32Array");
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

}  // namespace saekit::binding
