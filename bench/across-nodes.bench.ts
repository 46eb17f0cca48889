// Pipeline and tensor parallelism across a slow link, measured: pp2 with
// stage 0 on a leader (`troupe serve`) in network namespace a and stage 1 on a
// node agent (`troupe node --join`) in namespace b, and tp2 with tensor rank 0
// on the leader and tensor rank 1 on the agent, joined by a veth pair shaped by htb
// to each --rates bandwidth, with --delay-ms added per chunk in each
// direction by the faulty relay (the agent joins through it). `troupe bench
// serve` runs in namespace a at each --concurrency; the relay counts the
// bytes that really crossed, set beside the bytes each layout must move per
// token:
//
//   pp2: the residual stream of every token, stage 0 -> stage 1: 4 H bytes
//        (fp32 [T, H]), plus the step's metadata and the sampled tokens back
//   tp2: two row-parallel all-reduces per layer, each rank sending its 8 / tp
//        partial K-segment sums of [T, H] fp32 (so every rank folds the single
//        rank's terms in its order: native/src/collectives/link_group.h):
//        2 L x (8 / tp) x 4 H bytes per token each way, plus the embedding row's
//        and the sampled row's logits' own slices (4 H / tp, 4 V / tp)
//
//   npm run bench:across-nodes -- [--model DIR] [--layouts pp2,tp2] [--rates 1gbit,10gbit] [--delay-ms 0.5] [--concurrency 1,8]
//                                 [--num-prompts 16] [--input-len 128] [--output-len 32]
//
// Needs root and `ip netns` (test/runtime/netns.ts). Timers fire in whole
// milliseconds, so a delay under 1 ms becomes about 1 ms: the record keeps
// the mean delay the relay really applied.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Checkpoint } from '../models/checkpoint.js';
import { NetnsLink } from '../test/runtime/netns.js';
import { writeRecord } from './record.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const model = arg('model', join(homedir(), '.cache/troupe/models/llama-3.2-1b-seed1-bf16'));
const rates = arg('rates', '1gbit,10gbit').split(',');
const layouts = arg('layouts', 'pp2,tp2').split(',');
for (const l of layouts) if (l !== 'pp2' && l !== 'tp2') throw new Error(`--layouts: unknown layout '${l}' (pp2, tp2)`);
const delayMs = Number(arg('delay-ms', '0.5'));
const concurrencies = arg('concurrency', '1,8').split(',').map(Number);
const numPrompts = arg('num-prompts', '16');
const inputLen = arg('input-len', '128');
const outputLen = arg('output-len', '32');
const CLI = fileURLToPath(new URL('../cli/troupe.js', import.meta.url));
const RELAY = fileURLToPath(new URL('./fixtures/relay-main.js', import.meta.url));
const NODE_PORT = 7070;
const RELAY_PORT = 7071;
const HTTP_PORT = 8000;

const unavailable = NetnsLink.unavailable();
if (unavailable) {
  console.error(`across-nodes bench: ${unavailable}`);
  process.exit(2);
}

const config = Checkpoint.open(model).config;
const hiddenBytes = 4 * config.hiddenSize;
// tp2: per token, each rank's 8 / 2 segment partials of both row-parallel sums per layer, its
// slice of the embedding row; the logits slice only for a sampled row (once per output token).
const computed = {
  pp2BytesPerToken: hiddenBytes,
  tp2BytesPerTokenEachWay: 2 * config.numLayers * 4 * hiddenBytes + hiddenBytes / 2,
  tp2LogitsBytesPerOutputTokenEachWay: (4 * config.vocabSize) / 2,
};
console.log(`model ${model}: H ${config.hiddenSize}, L ${config.numLayers}, V ${config.vocabSize}; bytes per token across the link: ` +
  `pp2 ${computed.pp2BytesPerToken} (one hidden state), tp2 ${computed.tp2BytesPerTokenEachWay} each way ` +
  `(2 all-reduces x L layers x 4 segment partials, the embedding slice) + ${computed.tp2LogitsBytesPerOutputTokenEachWay} per output token (logits slice)`);

/** JSON lines a child prints, read in order. */
function jsonLines(child: ChildProcess) {
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try { lines.push(JSON.parse(line) as Record<string, unknown>); } catch { return; }
    for (const w of waiters.splice(0)) w();
  });
  return async (key: string, timeoutMs = 60_000): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = lines.findIndex((l) => key in l);
      if (i >= 0) return lines.splice(i, 1)[0]!;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${key} from the child`);
      await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 200); });
    }
  };
}

/** Runs to completion inside a namespace; resolves with stdout (rejects with stderr). */
function runIn(link: NetnsLink, side: 'a' | 'b', args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = link.spawn(side, process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err.slice(-2000)}`))));
  });
}

async function waitHealthy(link: NetnsLink, leader: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const probe = `fetch('http://127.0.0.1:${HTTP_PORT}/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;
  for (;;) {
    if (leader.exitCode !== null) throw new Error(`the leader exited (${leader.exitCode})`);
    try {
      await runIn(link, 'a', ['-e', probe]);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`the leader did not answer /health within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

const work = mkdtempSync(join(tmpdir(), 'troupe-across-nodes-'));
const tokenFile = join(work, 'join-token');
writeFileSync(tokenFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
const results: Record<string, unknown>[] = [];
try {
  for (const layout of layouts) for (const rate of rates) {
    const link = NetnsLink.create({ rate });
    try {
      const topologyFile = join(work, `${layout}.yaml`);
      writeFileSync(topologyFile, [
        layout === 'pp2' ? 'pipeline_parallel_size: 2' : 'tensor_parallel_size: 2', 'placement: thread', 'threads_per_rank: 1',
        `leader: { listen: "${link.a.address}:${NODE_PORT}" }`,
        'stages:', layout === 'pp2' ? '  - { stage: 1, placement: { node: n1 } }' : '  - { stage: 0, rank_placements: [thread, { node: n1 }] }',
        'nodes:', `  - { name: n1, address: ${link.b.address} }`, '',
      ].join('\n'));
      const logs: string[] = [];
      const keep = (who: string, child: ChildProcess) => {
        child.stderr?.on('data', (d) => logs.push(`${who}: ${String(d)}`));
      };
      const relay = link.spawn('b', process.execPath, [RELAY, JSON.stringify({ host: '127.0.0.1', port: RELAY_PORT, target: { host: link.a.address, port: NODE_PORT }, delayMs })],
        { stdio: ['pipe', 'pipe', 'pipe'] });
      keep('relay', relay);
      const relayLines = jsonLines(relay);
      await relayLines('listening');
      // no prefix caching: every run's prompt tokens cross the link, whatever ran before
      const leader = link.spawn('a', process.execPath, [CLI, 'serve', model, '--topology', topologyFile, '--join-token-file', tokenFile,
        '--host', '127.0.0.1', '--port', String(HTTP_PORT), '--max-model-len', '1024', '--kv-cache-memory', '512MiB', '--no-enable-prefix-caching'],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      keep('leader', leader);
      // the agent retries until the leader listens
      const agent = link.spawn('b', process.execPath, [CLI, 'node', '--join', `127.0.0.1:${RELAY_PORT}`, '--name', 'n1', '--join-token-file', tokenFile, '--rejoin-for', '300'],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      keep('agent', agent);
      try {
        await waitHealthy(link, leader, 600_000);
      } catch (error) {
        console.error(logs.join('').slice(-4000));
        throw error;
      }
      for (const concurrency of concurrencies) {
        relay.stdin!.write('stats\n');
        const before = await relayLines('bytesForwarded');
        const out = await runIn(link, 'a', [CLI, 'bench', 'serve', '--base-url', `http://127.0.0.1:${HTTP_PORT}`, '--num-prompts', numPrompts,
          '--input-len', inputLen, '--output-len', outputLen, '--max-concurrency', String(concurrency), '--ignore-eos', '--prompt-format', 'tokens', '--json'])
          .catch((error: Error) => {
            console.error(logs.join('').slice(-4000));
            throw error;
          });
        relay.stdin!.write('stats\n');
        const after = await relayLines('bytesForwarded');
        const figures = JSON.parse(out.slice(out.indexOf('{'))) as { completed: number; failed: number; totalInputTokens: number; totalOutputTokens: number; outputThroughput: number; totalTokenThroughput: number; tpotMs: { median: number }; ttftMs: { median: number } };
        const bytes = (after['bytesForwarded'] as number) - (before['bytesForwarded'] as number);
        const tokens = figures.totalInputTokens + figures.totalOutputTokens;
        const computedBytes = layout === 'pp2' ? computed.pp2BytesPerToken
          : 2 * (computed.tp2BytesPerTokenEachWay + (computed.tp2LogitsBytesPerOutputTokenEachWay * figures.totalOutputTokens) / tokens);
        const row = {
          layout, rate, delayMsRequested: delayMs, delayMsApplied: after['meanDelayMs'], concurrency,
          completed: figures.completed, failed: figures.failed,
          outputTokensPerSecond: figures.outputThroughput, totalTokensPerSecond: figures.totalTokenThroughput,
          medianTtftMs: figures.ttftMs.median, medianTpotMs: figures.tpotMs.median,
          linkBytes: bytes, linkBytesPerToken: bytes / tokens, computedBytesPerToken: computedBytes,
          linkMbitPerSecond: (bytes * 8) / 1e6 / (tokens / figures.totalTokenThroughput),
        };
        results.push(row);
        console.log(`${layout} over ${rate}, +${delayMs} ms (applied ${(after['meanDelayMs'] as number).toFixed(2)} ms), concurrency ${concurrency}: ` +
          `${figures.outputThroughput.toFixed(2)} output tok/s, ${figures.completed}/${figures.completed + figures.failed} completed, ` +
          `${(bytes / tokens).toFixed(0)} bytes/token crossed (computed ${computedBytes.toFixed(0)}, both ways)`);
      }
      agent.kill('SIGTERM');
      leader.kill('SIGTERM');
      relay.kill('SIGTERM');
    } finally {
      link.destroy();
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(`record: ${writeRecord('across-nodes', { model, config: { hiddenSize: config.hiddenSize, numLayers: config.numLayers }, computed, numPrompts, inputLen, outputLen, results })}`);
