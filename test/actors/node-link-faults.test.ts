// pp2 with stage 1 on a `troupe node` agent that joined THROUGH a faulty
// relay (test/runtime/faulty-relay.ts) instead of straight to the leader:
// a slow link changes no output, and the leader's shutdown lets the agent go
// (exit 0); a link cut mid-stream (reset, or closed by a middlebox) and
// restored within the rejoin timeout heals (the same agent process rejoins,
// every request completes with the tokens one rank gives, recomputed); a
// link that goes silent for good ends every request with a 503 within the
// timeout.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { GenerationParams } from '../../actors/engine/request-params.js';
import type { RankInfo } from '../../actors/messages/rank.js';
import { Troupe } from '../../actors/engine/troupe.js';
import { GatewayServer } from '../../gateway/server.js';
import { parseTopology } from '../../topology/load.js';
import { generatedModel, randomTokens } from '../models/helpers.js';
import { FaultyRelay } from '../runtime/faulty-relay.js';
import { assertAllUnavailable } from './node-agent.js';

const CLI = fileURLToPath(new URL('../../cli/troupe.js', import.meta.url));
const MODEL = generatedModel('tiny', 7);
const TOKEN = randomBytes(32).toString('hex');
const base = { model: MODEL, kvCacheMemory: '4MiB', maxModelLen: 512, threads: 1, maxNumBatchedTokens: 64, log: () => {} };

const REQUESTS: { prompt: number[]; params: GenerationParams }[] = Array.from({ length: 4 }, (_, i) => ({
  prompt: randomTokens(6 + i * 17, 128256, 900 + i),
  params: { maxTokens: 40, ignoreEos: true, ...(i % 2 ? { temperature: 0.7, seed: 77 + i } : { temperature: 0 }) },
}));

const PP2_ON_NODE = () => parseTopology([
  'pipeline_parallel_size: 2', 'placement: thread', 'allow_oversubscription: true',
  'stages:', '  - { stage: 1, placement: { node: n1 } }', 'nodes:', '  - { name: n1, address: 127.0.0.1 }',
].join('\n'));

let reference: number[][];

test.before(async () => {
  const single = await Troupe.start(base);
  try {
    reference = await Promise.all(REQUESTS.map((r) => single.generate([r.prompt], r.params).then((g) => g[0]!.outputs[0]!.tokenIds)));
  } finally {
    await single.shutdown();
  }
});

/** A node agent joining `port` (the relay's); killed at teardown. */
function joinAgent(t: ExecutionContext, port: number): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [CLI, 'node', '--join', `127.0.0.1:${port}`, '--name', 'n1', '--rejoin-for', '120'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TROUPE_JOIN_TOKEN: TOKEN } });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => output };
}

/**
 * The leader, with its node listener behind a relay; the agent joins the
 * relay. Everything is torn down by the test.
 */
async function leaderBehindRelay(t: ExecutionContext, options: { delayMs?: number; nodeRejoinTimeoutMs?: number; engineRecoveryTimeoutMs?: number; heartbeatTimeoutMs?: number } = {}) {
  let relay: FaultyRelay | undefined;
  let agent: ReturnType<typeof joinAgent> | undefined;
  const starting: Promise<void>[] = [];
  t.teardown(async () => { await relay?.close(); });
  const llm = await Troupe.start({
    ...base, parallel: { topology: PP2_ON_NODE() },
    nodeRejoinTimeoutMs: options.nodeRejoinTimeoutMs ?? 60_000,
    ...(options.engineRecoveryTimeoutMs ? { engineRecoveryTimeoutMs: options.engineRecoveryTimeoutMs } : {}),
    nodeListener: {
      token: TOKEN, port: 0, joinTimeoutMs: 60_000,
      ...(options.heartbeatTimeoutMs ? { heartbeatMs: 200, heartbeatTimeoutMs: options.heartbeatTimeoutMs } : {}),
      onListening: (address) => {
        starting.push(FaultyRelay.start({ target: address, delayMs: options.delayMs ?? 0 }).then((r) => {
          relay = r;
          agent = joinAgent(t, r.port);
        }));
      },
    },
  });
  t.teardown(() => llm.shutdown());
  await Promise.all(starting);
  return { llm, relay: relay!, agent: agent! };
}

/** Streams every request; resolves with its tokens, or the error its stream ended with. */
function streamAll(llm: Troupe, onTokens: (total: number) => void = () => {}) {
  let total = 0;
  return Promise.all(REQUESTS.map((r) => new Promise<{ tokens: number[] } | { error: Error }>((resolve) => {
    const tokens: number[] = [];
    llm.stream(r.prompt, r.params).subscribe({
      next: (delta) => {
        tokens.push(...delta.tokenIds);
        total += delta.tokenIds.length;
        onTokens(total);
      },
      error: (error: Error) => resolve({ error }),
      complete: () => resolve({ tokens }),
    });
  })));
}

const tokensOf = (results: ({ tokens: number[] } | { error: Error })[]) => results.map((r) => ('tokens' in r ? r.tokens : `error: ${r.error.message}`));

async function stage1Pid(llm: Troupe): Promise<number> {
  const info = await llm.system.refFor<{ type: 'info'; replyTo: unknown }>('troupe/engine/ranks/rank1').ask<RankInfo>((replyTo) => ({ type: 'info', replyTo }), { timeoutMs: 30_000 });
  return info.pid;
}

test.serial('over a link with added latency, pp2 across the relay gives one rank\'s tokens', async (t) => {
  const { llm, relay, agent } = await leaderBehindRelay(t, { delayMs: 4 });
  t.deepEqual(tokensOf(await streamAll(llm)), reference);
  t.is(await stage1Pid(llm), agent.child.pid!, 'stage 1 ran in the agent behind the relay');
  t.true(relay.bytesForwarded > 0);
  t.is(relay.connections, 1);
  // the leader's shutdown lets the node go: its agent exits 0 instead of rejoining
  const exited = new Promise<number | null>((resolve) => agent.child.once('close', (code) => resolve(code))); // pipes drained too
  await llm.shutdown();
  t.is(await exited, 0, agent.output());
  t.regex(agent.output(), /disconnected \(released by the leader\)/);
});

for (const mode of ['reset', 'close'] as const) {
  test.serial(`the link cut mid-stream (${mode === 'reset' ? 'RST' : 'FIN'}) and restored within the rejoin timeout: the same agent rejoins and every request completes, recomputed`, async (t) => {
    const { llm, relay, agent } = await leaderBehindRelay(t, { delayMs: 1 });
    let cut = false;
    const results = streamAll(llm, (total) => {
      if (cut || total < 8) return;
      cut = true;
      relay.cut(mode);
      setTimeout(() => relay.restore(), 300);
    });
    t.deepEqual(tokensOf(await results), reference, agent.output());
    t.true(cut, 'the link was cut while the requests streamed');
    t.true(relay.connections >= 2, 'the agent connected again through the relay');
    t.is(agent.child.exitCode, null, 'the agent process lived through the cut');
    t.is(await stage1Pid(llm), agent.child.pid!, 'stage 1 runs in the same agent, rejoined');
    t.regex(agent.output(), /rejoined the leader/);
    t.is(llm.engineState.state, 'up');
  });
}

test.serial('the link goes silent for good: every request ends with a 503 within the timeout, new ones are refused, /health says 503', async (t) => {
  const { llm, relay } = await leaderBehindRelay(t, { nodeRejoinTimeoutMs: 500, engineRecoveryTimeoutMs: 3000, heartbeatTimeoutMs: 2000 });
  const gateway = await GatewayServer.start(llm, {
    host: '127.0.0.1', port: 0, modelDir: MODEL, servedModelNames: ['tiny'], maxNumSeqs: 64, maxPendingRequests: 64, maxRequestBytes: 1 << 20, version: 'test', log: () => {},
  });
  t.teardown(() => gateway.close());
  const url = `http://127.0.0.1:${gateway.port}`;
  t.is((await fetch(`${url}/health`)).status, 200);
  let cut = false;
  const results = await streamAll(llm, (total) => {
    if (cut || total < 4) return;
    cut = true;
    relay.cut('silent'); // only heartbeats can tell
  });
  t.true(cut);
  assertAllUnavailable(t, results);
  t.is(llm.engineState.state, 'unavailable');
  await t.throwsAsync(llm.generate([REQUESTS[0]!.prompt], REQUESTS[0]!.params), { name: 'EngineUnavailableError' });
  const health = await fetch(`${url}/health`);
  t.is(health.status, 503);
  const refused = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: [1, 2, 3], max_tokens: 2 }) });
  t.is(refused.status, 503);
  t.is(((await refused.json()) as { error: { type: string } }).error.type, 'ServiceUnavailableError');
});
