// The toy data stream and the normal quantile function, as addon functions.
#pragma once

#include <napi.h>

namespace saekit::binding {

// Adds toySample, toySampleAsync and normalQuantile to the addon's exports.
void registerToy(Napi::Env env, Napi::Object exports);

}  // namespace saekit::binding
