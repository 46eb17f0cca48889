#!/usr/bin/env bash
# Tensor parallelism across nodes, on 127.0.0.1: `troupe serve` with tensor
# rank 0 in a worker thread and tensor rank 1 in a `troupe node --join` agent
# (another process on this machine, over the TLS node link), measured with
# `troupe bench serve`. Indicative only: both "nodes" share this machine's
# cores and the link is loopback (no bandwidth limit, ~no latency); the link
# cost per token is in native/src/collectives/link_group.h. Layouts:
#   tp2-nodes  tensor ranks here + on the node (all-reduces over the link)
#   tp2-here   both tensor ranks here (shared memory), for comparison
#   pp2-nodes  stage 0 here, stage 1 on the node (one hidden row per token over the link)
# Each run's JSON goes to bench/results/tp-across-nodes-<layout>-<time>.json,
# with the load average before and after.
#
#   bench/tp-across-nodes.sh [MODEL_DIR] [LAYOUT...]   (default: the demo model, tp2-nodes)
#   env: INPUT_LEN (64), OUTPUT_LEN (32), PROMPTS (8), CONCURRENCY (1)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-}"
[ -n "$MODEL" ] || MODEL="$(node -e "import('./dist/cli/default-model.js').then((m) => console.log(m.ensureDefaultModel().dir))")"
shift || true
LAYOUTS=("$@")
[ ${#LAYOUTS[@]} -gt 0 ] || LAYOUTS=(tp2-nodes)
STAMP="$(date -u +%Y-%m-%dT%H-%M-%SZ)"
WORK="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
openssl rand -hex 32 > "$WORK/token"

topology() { # layout, leader port
  case "$1" in
    tp2-nodes) printf 'tensor_parallel_size: 2\nplacement: thread\nthreads_per_rank: 1\nstages:\n  - { stage: 0, rank_placements: [thread, { node: n1 }] }\n' ;;
    tp2-here) printf 'tensor_parallel_size: 2\nplacement: thread\nthreads_per_rank: 1\n' ;;
    pp2-nodes) printf 'pipeline_parallel_size: 2\nplacement: thread\nthreads_per_rank: 1\nstages:\n  - { stage: 1, placement: { node: n1 } }\n' ;;
    *) echo "unknown layout $1 (tp2-nodes, tp2-here, pp2-nodes)" >&2; exit 2 ;;
  esac
  printf 'allow_oversubscription: true\nnodes:\n  - { name: n1, address: 127.0.0.1 }\nleader: { listen: "127.0.0.1:%s" }\n' "$2"
}

for layout in "${LAYOUTS[@]}"; do
  port=$((20000 + RANDOM % 20000)); lport=$((port + 1))
  topology "$layout" "$lport" > "$WORK/$layout.yaml"
  node dist/cli/troupe.js serve "$MODEL" --topology "$WORK/$layout.yaml" --port "$port" --served-model-name bench \
    --join-token-file "$WORK/token" --max-model-len 2048 --kv-cache-memory 256MiB > "$WORK/$layout.log" 2>&1 &
  PIDS+=($!); serve=$!
  if [[ "$layout" == *nodes ]]; then
    # the agent retries until the leader listens
    node dist/cli/troupe.js node --join "127.0.0.1:$lport" --join-token-file "$WORK/token" --name n1 > "$WORK/$layout-node.log" 2>&1 &
    PIDS+=($!); agent=$!
  fi
  up=0
  for _ in $(seq 1 1500); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && { up=1; break; }; kill -0 "$serve" 2>/dev/null || break; sleep 0.2; done
  if [ "$up" = 0 ]; then echo "$layout: the server did not come up:" >&2; tail -20 "$WORK/$layout.log" "$WORK/$layout-node.log" >&2 2>/dev/null || true; exit 1; fi
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  node dist/cli/troupe.js bench serve --port "$port" --input-len "${INPUT_LEN:-64}" --output-len "${OUTPUT_LEN:-32}" \
    --num-prompts "${PROMPTS:-8}" --max-concurrency "${CONCURRENCY:-1}" --ignore-eos --prompt-format tokens --no-progress --no-record --json \
    > "$WORK/$layout.json"
  load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
  node -e "
    const r = JSON.parse(require('fs').readFileSync('$WORK/$layout.json', 'utf8'));
    const out = { layout: '$layout', model: '$MODEL', loadavgBefore: '$load_before', loadavgAfter: '$load_after', cores: require('os').cpus().length, result: r };
    require('fs').writeFileSync('bench/results/tp-across-nodes-$layout-$STAMP.json', JSON.stringify(out, null, 2) + '\n');
    const f = (k) => (typeof r[k] === 'number' ? r[k].toFixed(2) : r[k]);
    console.log('$layout: output tok/s', f('outputThroughput') ?? JSON.stringify(r).slice(0, 300), '| load $load_before -> $load_after');
  "
  kill "$serve" 2>/dev/null || true; wait "$serve" 2>/dev/null || true
  [[ "$layout" == *nodes ]] && { kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; }
done
