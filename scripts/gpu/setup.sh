# Sourced by check.sh and bench.sh on the GPU machine: Node on PATH, node_modules, and the
# addon where lib/native.ts looks for it, all from the kit scripts/gpu/kit.sh built.
mkdir -p /tmp/nodebin
[ -x /tmp/nodebin/node ] || { xz -dc .gpu/node.xz > /tmp/nodebin/node && chmod +x /tmp/nodebin/node; }
export PATH=/tmp/nodebin:$PATH
[ -d node_modules/vitest ] || tar -xJf .gpu/node_modules.tar.xz
mkdir -p build/Release && cp .gpu/bin/saekit.node build/Release/
export SAEKIT_CUDA=1
PY=$(command -v python3)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
echo "kit built from $(cat .gpu/bin/commit 2>/dev/null || echo '?'), tree at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
