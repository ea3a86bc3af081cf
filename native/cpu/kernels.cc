#include "kernels.h"

#include <cstdlib>
#include <cstring>

namespace saekit::cpu {
namespace {

bool cpuHasAvx2() {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

std::vector<const Kernels*> detect() {
  std::vector<const Kernels*> sets{&genericKernels()};
#if defined(__x86_64__) || defined(_M_X64)
  if (cpuHasAvx2()) sets.push_back(&avx2Kernels());
#endif
  return sets;
}

}  // namespace

std::vector<const Kernels*> availableKernels() {
  static const std::vector<const Kernels*> sets = detect();
  return sets;
}

const Kernels& kernels() {
  static const Kernels* chosen = [] {
    std::vector<const Kernels*> sets = availableKernels();
    const char* cap = std::getenv("SAEKIT_SIMD");
    const Kernels* best = sets.front();
    for (const Kernels* set : sets) {
      best = set;
      if (cap != nullptr && std::strcmp(cap, set->name) == 0) break;
    }
    return best;
  }();
  return *chosen;
}

const Kernels* kernelsNamed(const std::string& name) {
  if (name.empty()) return &kernels();
  for (const Kernels* set : availableKernels()) {
    if (name == set->name) return set;
  }
  return nullptr;
}

}  // namespace saekit::cpu
