#!/usr/bin/env bash
# The seed's FP8 accuracy claim at small scale: `troupe eval` on the demo model
# served in bf16, as FBGEMM FP8 checkpoints (meta: middle layers' MLPs; all:
# every linear and the lm head), with online --quantization fp8, and with an
# FP8 KV cache. Each run's JSON goes to bench/results/demo-eval-<variant>-<time>.json
# and the table of scores and drops against bf16 to bench/results/demo-fp8-eval-<time>.md.
#
#   bench/demo-fp8-eval.sh [limit]      (default 200 items per task)
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT="${1:-200}"
STAMP="$(date -u +%Y-%m-%dT%H-%M-%SZ)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
MODEL="$(node -e "import('./dist/cli/default-model.js').then((m) => console.log(m.ensureDefaultModel().dir))")"
node dist/cli/troupe.js quantize --fp8 --scheme meta "$MODEL" "$WORK/fp8-meta" >/dev/null
node dist/cli/troupe.js quantize --fp8 --scheme all "$MODEL" "$WORK/fp8-all" >/dev/null

run() { # variant, then serve arguments
  local variant="$1"; shift
  local port=$((20000 + RANDOM % 20000))
  node dist/cli/troupe.js serve "$@" --port "$port" --served-model-name troupe-demo-36m --max-model-len 4096 --kv-cache-memory 128MiB > "$WORK/$variant.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
  node dist/cli/troupe.js eval --base-url "http://127.0.0.1:$port/v1" --limit "$LIMIT" --no-progress --output "bench/results/demo-eval-$variant-$STAMP.json" | tail -n +2
  kill "$pid"; wait "$pid" || true
}
run bf16 "$MODEL"
run fp8-meta "$WORK/fp8-meta"
run fp8-all "$WORK/fp8-all"
run fp8-online "$MODEL" --quantization fp8
run kv-fp8 "$MODEL" --kv-cache-dtype fp8
node --input-type=module -e "
import { readFileSync, writeFileSync } from 'node:fs';
const variants = ['bf16', 'fp8-meta', 'fp8-all', 'fp8-online', 'kv-fp8'];
const load = (v) => JSON.parse(readFileSync('bench/results/demo-eval-' + v + '-$STAMP.json', 'utf8')).results;
const base = load('bf16');
const rows = ['| variant | task | metric | value | ± stderr | Δ vs bf16 |', '|---|---|---|---|---|---|'];
for (const v of variants) for (const r of load(v)) for (const [m, x] of Object.entries(r.metrics)) {
  const b = base.find((q) => q.task === r.task).metrics[m].value;
  rows.push('| ' + [v, r.task, m, x.value.toFixed(4), x.stderr === undefined ? '' : x.stderr.toFixed(4), (x.value - b >= 0 ? '+' : '') + (x.value - b).toFixed(4)].join(' | ') + ' |');
}
const md = '# troupe-demo-36m: bf16 against FP8 ($STAMP, limit $LIMIT per task)\n\n' + rows.join('\n') + '\n';
writeFileSync('bench/results/demo-fp8-eval-$STAMP.md', md);
console.log(md);
"
