// Whole chunks of b needed to cover a items (a >= 0, b > 0): task counts, tiles, grid sizes.
#pragma once

#include <cstdint>

namespace saekit {

constexpr int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace saekit
