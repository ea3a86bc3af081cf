#!/usr/bin/env bash
# Every GPU test of the CUDA backend, on the GPU machine from the repository root, writing
# logs under $OUT: cuda_tests alone (it measures the GPU's free memory), with native_tests
# beside it on the CPU; then side by side the CUDA vitest files and the fuzzer's calls on the
# CUDA backend. About 45 s on an H100.
source scripts/gpu/setup.sh
stamp() { echo "[$SECONDS s] $*" | tee -a "$OUT/timeline.txt"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
date -u | tee -a "$OUT/gpu.txt"
timeout 60 .gpu/bin/native_tests > "$OUT/native_tests.txt" 2>&1 &
timeout 150 .gpu/bin/cuda_tests > "$OUT/cuda_tests.txt" 2>&1; echo "cuda_tests rc=$?" | tee -a "$OUT/cuda_tests.txt"
grep FAIL "$OUT/cuda_tests.txt" | head -20; tail -2 "$OUT/cuda_tests.txt"
wait; echo "native_tests: $(tail -1 "$OUT/native_tests.txt")"
stamp cuda_tests done
timeout 200 node node_modules/vitest/vitest.mjs run test/cuda.parity.test.ts test/backends.test.ts test/sae.non_finite.test.ts \
  > "$OUT/parity.txt" 2>&1 &
parity=$!
# The fuzzer's calls on the CUDA backend (test/fuzz.test.ts needs tsc, which the kit leaves
# behind: the worker runs on dist/ directly). Its last line lists any violations. From a
# scratch directory: fuzzed saves write relative to it.
root=$PWD; mkdir -p /tmp/fuzz
(cd /tmp/fuzz && FUZZ_DEVICES=cuda timeout 200 node "$root/test/fuzz/fuzz_worker.mjs" 3 5000 "$OUT/fuzz_calls.log") > "$OUT/fuzz.txt" 2>&1 &
fuzz=$!
wait $parity; echo "parity rc=$?" | tee -a "$OUT/parity.txt"; grep -E "FAIL|×|Tests " "$OUT/parity.txt" | head -30
wait $fuzz; echo "fuzz rc=$?"; tail -c 400 "$OUT/fuzz.txt"
stamp tests done
