// Cheap re-checks of what the TypeScript layer already validated, so that a bug there (or a
// direct call into the addon) becomes a TypeError instead of a crash.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace saekit::binding {

Napi::Object objectArg(const Napi::CallbackInfo& info, size_t index, const char* name);
double numberArg(const Napi::CallbackInfo& info, size_t index, const char* name);
int64_t countArg(const Napi::CallbackInfo& info, size_t index, const char* name);
// A Float32Array of at least `length` elements.
Napi::Float32Array floatsArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                             int64_t length);
Napi::Int32Array intsArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                         int64_t length);

double numberField(const Napi::Object& object, const char* name);
bool boolField(const Napi::Object& object, const char* name);

}  // namespace saekit::binding
