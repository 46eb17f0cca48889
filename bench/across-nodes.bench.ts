// Pipeline parallelism across a slow link, measured: pp2 with stage 0 on a
// leader (`troupe serve`) in network namespace a and stage 1 on a node agent
// (`troupe node --join`) in namespace b, joined by a veth pair shaped by htb
// to each --rates bandwidth, with --delay-ms added per chunk in each
// direction by the faulty relay (the agent joins through it). `troupe bench
// serve` runs in namespace a at each --concurrency; the relay counts the
// bytes that really crossed, set beside the bytes each layout must move per
// token:
//
//   pp2: the residual stream of every token, stage 0 -> stage 1: 4 H bytes
//        (fp32 [T, H]), plus the step's metadata and the sampled tokens back
//   tp2: two all-reduces of [T, H] fp32 per layer, each rank sending its
//        partial sum: 2 L x 4 H bytes per token each way (computed only; tp
//        across nodes is measured elsewhere)
//
//   npm run bench:across-nodes -- [--model DIR] [--rates 1gbit,10gbit] [--delay-ms 0.5] [--concurrency 1,8]
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
const delayMs = Number(arg('delay-ms', '0.5'));
const concurrencies = arg('concurrency', '1,8').split(',').map(Number);
const numPrompts = arg('num-prompts', '16');
const inputLen = arg('input-len', '128');
const outputLen = arg('output-len', '32');
const CLI = fileURLToPath(new URL('../gateway/cli.js', import.meta.url));
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
const computed = { pp2BytesPerToken: hiddenBytes, tp2BytesPerTokenEachWay: 2 * config.numLayers * hiddenBytes };
console.log(`model ${model}: H ${config.hiddenSize}, L ${config.numLayers}; bytes per token across the link: ` +
  `pp2 ${computed.pp2BytesPerToken} (one hidden state), tp2 ${computed.tp2BytesPerTokenEachWay} each way (2 all-reduces x L layers)`);

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
  for (const rate of rates) {
    const link = NetnsLink.create({ rate });
    try {
      const topologyFile = join(work, 'pp2.yaml');
      writeFileSync(topologyFile, [
        'pipeline_parallel_size: 2', 'placement: thread', 'threads_per_rank: 1',
        `leader: { listen: "${link.a.address}:${NODE_PORT}" }`,
        'stages:', '  - { stage: 1, placement: { node: n1 } }',
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
        const row = {
          layout: 'pp2', rate, delayMsRequested: delayMs, delayMsApplied: after['meanDelayMs'], concurrency,
          completed: figures.completed, failed: figures.failed,
          outputTokensPerSecond: figures.outputThroughput, totalTokensPerSecond: figures.totalTokenThroughput,
          medianTtftMs: figures.ttftMs.median, medianTpotMs: figures.tpotMs.median,
          linkBytes: bytes, linkBytesPerToken: bytes / tokens, computedBytesPerToken: computed.pp2BytesPerToken,
          linkMbitPerSecond: (bytes * 8) / 1e6 / (tokens / figures.totalTokenThroughput),
        };
        results.push(row);
        console.log(`pp2 over ${rate}, +${delayMs} ms (applied ${(after['meanDelayMs'] as number).toFixed(2)} ms), concurrency ${concurrency}: ` +
          `${figures.outputThroughput.toFixed(2)} output tok/s, ${figures.completed}/${figures.completed + figures.failed} completed, ` +
          `${(bytes / tokens).toFixed(0)} bytes/token crossed (computed ${computed.pp2BytesPerToken} for the hidden state)`);
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
