#!/usr/bin/env bash
# One device call for all the GPU checks: check.sh, then bench.sh (alone on the GPU), within
# `limit` seconds (first argument, default 540), the logs coming back as $OUT/logs.tgz even
# when a step runs out of time (the device tool returns at most 8 files). About 200 s on an
# H100; `run.sh LIMIT speed` benchmarks only the SAE step (about 160 s in all). Run with
# [".gpu", "dist"] carried, after scripts/gpu/kit.sh.
limit=${1:-540}
final=$OUT
export OUT=/tmp/saekit-gpu-logs
mkdir -p "$OUT"
timeout -k 5 "$limit" bash -c 'bash scripts/gpu/check.sh; bash scripts/gpu/bench.sh "$1"' _ "${2:-}"
echo "rc=$? after $SECONDS s" | tee -a "$OUT/timeline.txt"
tar -czf "$final/logs.tgz" -C "$OUT" .
