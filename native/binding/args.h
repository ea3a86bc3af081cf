// Cheap re-checks of what the TypeScript layer already validated, so that a bug there (or a
// direct call into the addon) becomes a TypeError instead of a crash.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace saekit::binding {

Napi::Object objectArg(const Napi::CallbackInfo& info, size_t index, const char* name);
double numberArg(const Napi::CallbackInfo& info, size_t index, const char* name);
int64_t countArg(const Napi::CallbackInfo& info, size_t index, const char* name);
bool boolArg(const Napi::CallbackInfo& info, size_t index, const char* name);
// rows * cols, the length a [rows, cols] array argument must have: a RangeError naming `rows`
// where that is beyond any typed array (2^53 - 1), so the product never overflows into a
// small length that an empty array would pass.
int64_t elementCount(int64_t rows, int64_t cols, const char* rowsName);
// A Float32Array of at least `length` elements.
Napi::Float32Array floatsArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                             int64_t length);
// A Float64Array of at least `length` elements.
Napi::Float64Array doublesArg(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t length);
Napi::Int32Array intsArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                         int64_t length);
// A copy of an index list argument (at least `length` elements), for a job: indices are
// checked once and then used on another thread, and JS may change the array in between.
std::shared_ptr<std::vector<int32_t>> indexCopyArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                                                  int64_t length);

double numberField(const Napi::Object& object, const char* name);
bool boolField(const Napi::Object& object, const char* name);

struct ModelBasics {
  int64_t dIn;
  int64_t dHidden;
  uint64_t seed;
  int threads;
  std::string cpuKernels;  // empty: the best set for this CPU
  bool cuda;               // device 'cuda' or 'cuda:N' rather than 'cpu'
  int cudaDevice;          // N (0 for 'cuda')
};

// The options every model's native constructor takes: dIn and dHidden in [1, 2^31), seed,
// threads in [1, 1024], and the optional cpuKernels (tests) and device ('cpu' when absent).
ModelBasics modelBasics(const Napi::Object& options);

// BACKEND_UNAVAILABLE for a CUDA device in a build without the CUDA backend; `what` is "a Rica".
[[noreturn]] void throwNoCudaBackend(const std::string& what, const ModelBasics& basics);

// Copies the basics into a model's config (SaeConfig, FistaConfig, RicaConfig, ...).
template <class Config>
void applyBasics(const ModelBasics& basics, Config& config) {
  config.dIn = basics.dIn;
  config.dHidden = basics.dHidden;
  config.seed = basics.seed;
  config.threads = basics.threads;
  config.cpuKernels = basics.cpuKernels;
  config.cudaDevice = basics.cudaDevice;
}

// Adam's settings (lr, beta1, beta2, eps) into a model's config.
template <class Config>
void readAdam(const Napi::Object& options, Config& config) {
  config.lr = static_cast<float>(numberField(options, "lr"));
  config.beta1 = static_cast<float>(numberField(options, "beta1"));
  config.beta2 = static_cast<float>(numberField(options, "beta2"));
  config.eps = static_cast<float>(numberField(options, "eps"));
}

}  // namespace saekit::binding
