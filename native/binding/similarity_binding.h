// Cosine similarities between the rows of two matrices, for lib/metrics.ts.
#pragma once

#include <napi.h>

namespace saekit::binding {

// Adds cosineSimilarity to the addon's exports.
void registerSimilarity(Napi::Env env, Napi::Object exports);

}  // namespace saekit::binding
