#!/usr/bin/env bash
# The GPU benchmarks of the CUDA backend (same kit and $OUT as check.sh): the SAE step at the
# issue's shapes at both precisions next to PyTorch on the same GPU, then per-phase medians
# (SAEKIT_CUDA_PROFILE) in a run of their own, then RICA and FISTA against the CPU. About 150 s
# on an H100, and about 60 s more with a baseline (kit.sh). `bench.sh speed` times the SAE step
# alone (with the baseline, if any): about 120 s.
source scripts/gpu/setup.sh
timeout 200 node bench/cuda_speed.mjs --python "$PY" --out "$OUT/bench" > "$OUT/bench.txt" 2>&1
echo "bench rc=$?" >> "$OUT/bench.txt"; grep -v "^ *$" "$OUT/bench.txt" | tail -12
if [ -f .gpu/baseline/saekit.node ]; then
  # The baseline's addon, dist and bench, then this tree's, in turn, twice, without PyTorch:
  # run-to-run drift on one machine is of the size of the changes measured.
  for round in 1 2; do
    for tree in "$PWD/.gpu/baseline" "$PWD"; do
      addon=$tree/saekit.node; [ "$tree" = "$PWD" ] && addon=$PWD/build/Release/saekit.node
      echo "round $round, $tree:"
      SAEKIT_ADDON=$addon timeout 60 node "$tree/bench/cuda_speed.mjs" --no-torch --out /tmp/ab | grep " ms/step"
    done
  done 2>&1 | tee "$OUT/ab.txt"
fi
[ "${1:-}" = speed ] && exit 0
# Where the time goes, apart: the profile waits for the GPU at the end of every phase, which
# slows the steps it times (a third slower at 768 x 24576).
SAEKIT_CUDA_PROFILE=1 timeout 100 node bench/cuda_speed.mjs --no-torch --steps 10 --out /tmp/profiled > "$OUT/profile.txt" 2>&1
grep -v "^ *$" "$OUT/profile.txt" | tail -60
timeout 150 node bench/cuda_baselines.mjs --out "$OUT/bench" > "$OUT/baselines.txt" 2>&1; cat "$OUT/baselines.txt"
