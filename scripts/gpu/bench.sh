#!/usr/bin/env bash
# The GPU benchmarks of the CUDA backend (same kit and $OUT as check.sh): the SAE step at the
# issue's shapes at both precisions next to PyTorch on the same GPU, with per-phase medians
# (SAEKIT_CUDA_PROFILE), then RICA and FISTA against the CPU. About 100 s on an H100.
source scripts/gpu/setup.sh
SAEKIT_CUDA_PROFILE=1 timeout 300 node bench/cuda_speed.mjs --python "$PY" --out "$OUT/bench" > "$OUT/bench.txt" 2>&1
echo "bench rc=$?" >> "$OUT/bench.txt"; grep -v "^ *$" "$OUT/bench.txt" | tail -40
timeout 150 node bench/cuda_baselines.mjs --out "$OUT/bench" > "$OUT/baselines.txt" 2>&1; cat "$OUT/baselines.txt"
