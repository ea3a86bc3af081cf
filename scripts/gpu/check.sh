#!/usr/bin/env bash
# Every GPU test of the CUDA backend, on the GPU machine from the repository root, writing
# logs under $OUT (the device tool's): cuda_tests (the TF32 tests with both TF32 kernels),
# native_tests, and the CUDA vitest files, the parity file once more with the pipelined TF32
# kernel. A few minutes on an H100.
source scripts/gpu/setup.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
date -u | tee -a "$OUT/gpu.txt"
timeout 150 .gpu/bin/cuda_tests > "$OUT/cuda_tests.txt" 2>&1; echo "cuda_tests rc=$?" | tee -a "$OUT/cuda_tests.txt"
grep FAIL "$OUT/cuda_tests.txt" | head -20; tail -2 "$OUT/cuda_tests.txt"
timeout 60 .gpu/bin/native_tests > "$OUT/native_tests.txt" 2>&1; echo "native_tests rc=$?"; tail -1 "$OUT/native_tests.txt"
timeout 200 node node_modules/vitest/vitest.mjs run test/cuda.parity.test.ts test/backends.test.ts test/sae.non_finite.test.ts \
  > "$OUT/parity.txt" 2>&1; echo "parity rc=$?" | tee -a "$OUT/parity.txt"; grep -E "FAIL|×|Tests " "$OUT/parity.txt" | head -30
SAEKIT_CUDA_TF32_KERNEL=pipelined timeout 150 node node_modules/vitest/vitest.mjs run test/cuda.parity.test.ts \
  > "$OUT/parity_pipelined.txt" 2>&1; echo "parity (pipelined TF32) rc=$?" | tee -a "$OUT/parity_pipelined.txt"
grep -E "FAIL|×|Tests " "$OUT/parity_pipelined.txt" | head -30
# The fuzzer's calls on the CUDA backend (test/fuzz.test.ts needs tsc, which the kit leaves
# behind: the worker runs on dist/ directly). Its last line lists any violations.
# From a scratch directory: fuzzed saves write relative to it.
root=$PWD; mkdir -p /tmp/fuzz
(cd /tmp/fuzz && FUZZ_DEVICES=cuda timeout 200 node "$root/test/fuzz/fuzz_worker.mjs" 3 5000 "$OUT/fuzz_calls.log") > "$OUT/fuzz.txt" 2>&1
echo "fuzz rc=$?"; tail -c 400 "$OUT/fuzz.txt"
