#include "checks.h"

#include <cmath>
#include <string>

#include "error.h"

namespace saekit {

void checkSparseCodes(const SparseCodesView& codes, int64_t cols, int64_t stored) {
  if (codes.indptr[0] != 0) {
    throwRangeError("Expected codes.indptr[0] to be 0 but received " + std::to_string(codes.indptr[0]));
  }
  for (int64_t r = 0; r < codes.rows; ++r) {
    if (codes.indptr[r + 1] < codes.indptr[r]) {
      throwRangeError("Expected codes.indptr to be non-decreasing but indptr[" + std::to_string(r + 1) +
                      "] = " + std::to_string(codes.indptr[r + 1]) + " is less than indptr[" +
                      std::to_string(r) + "] = " + std::to_string(codes.indptr[r]));
    }
  }
  const int64_t nnz = codes.indptr[codes.rows];
  if (nnz > stored) {
    throwRangeError("Expected codes.indptr[rows] = " + std::to_string(nnz) +
                    " to be at most the length of codes.indices and codes.values (" +
                    std::to_string(stored) + ")");
  }
  for (int64_t e = 0; e < nnz; ++e) {
    if (codes.indices[e] < 0 || codes.indices[e] >= cols) {
      throwRangeError("Expected codes.indices to be in [0, " + std::to_string(cols) + ") but indices[" +
                      std::to_string(e) + "] is " + std::to_string(codes.indices[e]));
    }
  }
}

void throwNonFinite(const std::string& name, float value, int64_t index, int64_t cols) {
  const char* what = std::isnan(value) ? "NaN" : (value > 0 ? "Infinity" : "-Infinity");
  std::string where = "index " + std::to_string(index);
  if (cols > 0) {
    where += " (row " + std::to_string(index / cols) + ", column " + std::to_string(index % cols) + ")";
  }
  throwRangeError("Expected finite values in " + name + " but found " + what + " at " + where);
}

}  // namespace saekit
