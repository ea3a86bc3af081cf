// Input checks shared by every backend and by the binding: cheap passes that stand between a
// bad caller and an out-of-bounds read or a silently poisoned model.
#pragma once

#include <cstdint>
#include <string>

#include "sae.h"

namespace saekit {

// Throws a RangeError unless `codes` is a well-formed CSR with `cols` columns whose
// indices and values arrays hold `stored` entries: indptr starts at 0 and never decreases,
// its last entry is at most `stored`, and every index is in [0, cols).
void checkSparseCodes(const SparseCodesView& codes, int64_t cols, int64_t stored);

// Throws the RangeError for a NaN or infinite `value` found at `index` of `name`; `cols` > 0
// adds the row and column to the message.
[[noreturn]] void throwNonFinite(const std::string& name, float value, int64_t index, int64_t cols);

}  // namespace saekit
