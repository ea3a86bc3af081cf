#!/usr/bin/env bash
# Builds, on a development machine with nvcc but no GPU, what the GPU checks of the CUDA
# backend need on a bare GPU machine that has no Node and reaches no registry (the device
# tool's machines): .gpu/ (git-ignored) gets Node, node_modules, and bin/ with the addon,
# cuda_tests and native_tests compiled for sm_90 from this tree; dist/ is rebuilt for the
# benchmarks. Then run, on the GPU machine, with [".gpu", "dist"] carried (about 45 MB):
#   bash scripts/gpu/run.sh      both of these, logs back as one archive (about 150 s):
#   bash scripts/gpu/check.sh    the GPU tests
#   bash scripts/gpu/bench.sh    the benchmarks
# With SAEKIT_BASELINE=dir (a directory holding saekit.node, package.json, dist/ and bench/ of
# another commit, e.g. build-cmake/Release/saekit.node and the rest copied aside before a change),
# bench.sh also times the SAE step with it, alternating with this tree's, to measure a change
# in the same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpu/bin
[ -f .gpu/node.xz ] || xz -T2 -c "$(command -v node)" > .gpu/node.xz
# TypeScript stays behind: dist/ is built here.
[ -f .gpu/node_modules.tar.xz ] || tar --exclude=node_modules/typescript -cJf .gpu/node_modules.tar.xz node_modules
SAEKIT_CUDA=1 SAEKIT_CUDA_ARCHS=90 npx cmake-js compile --out build-cmake --CDSAEKIT_NATIVE_TESTS=ON > .gpu/build.log 2>&1 ||
  { tail -30 .gpu/build.log; exit 1; }
cp build-cmake/Release/saekit.node build-cmake/cuda_tests build-cmake/native_tests .gpu/bin/
npm run build > /dev/null
git rev-parse --short HEAD > .gpu/bin/commit
rm -rf .gpu/baseline
if [ -n "${SAEKIT_BASELINE:-}" ]; then
  # dist reads its version from ../package.json.
  mkdir -p .gpu/baseline && cp -r "$SAEKIT_BASELINE"/{saekit.node,package.json,dist,bench} .gpu/baseline/
fi
du -sh .gpu dist
