// Tensor groups across nodes on 127.0.0.1: a stage's tensor ranks split
// between this process's worker threads and a real `troupe node --join`
// agent; their all-reduces go over the TLS node link (link groups), folded in
// the single rank's order, so tokens and logprobs are those of one rank and of
// tp2 on one machine. A node dropped mid-stream is handled as for pp: the
// rank group waits for the node, rebuilds, and the requests recompute.
import test, { type ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Troupe } from '../../actors/engine/troupe.js';
import type { GenerationParams } from '../../actors/engine/request-params.js';
import type { RankInfo } from '../../actors/messages/rank.js';
import { parseTopology } from '../../topology/load.js';
import { generatedModel, randomTokens } from '../models/helpers.js';
import { joinAgent as joinAgentAs } from './node-agent.js';

const MODEL = generatedModel('tiny', 7);
const TOKEN = randomBytes(32).toString('hex');
const quiet = { log: () => {} };
const base = { model: MODEL, kvCacheMemory: '4MiB', maxModelLen: 512, threads: 1, maxNumBatchedTokens: 64, ...quiet };

const REQUESTS = Array.from({ length: 4 }, (_, i) => ({
  prompt: randomTokens(6 + i * 17, 128256, 900 + i),
  params: { maxTokens: 8, ignoreEos: true, logprobs: 2, ...(i % 2 ? { temperature: 0.7, seed: 77 + i } : { temperature: 0 }) } satisfies GenerationParams,
}));
const LONG = REQUESTS.map((r) => ({ prompt: r.prompt, params: (({ logprobs: _omit, ...rest }) => ({ ...rest, maxTokens: 48 }))(r.params) }));

async function outputs(llm: Troupe) {
  const results = await Promise.all(REQUESTS.map((r) => llm.generate([r.prompt], r.params)));
  return results.map((g) => ({ tokens: g[0]!.outputs[0]!.tokenIds, logprobs: g[0]!.outputs[0]!.logprobs }));
}

let single: Promise<{ short: Awaited<ReturnType<typeof outputs>>; long: number[][] }> | undefined;
function oneRank() {
  return (single ??= (async () => {
    const llm = await Troupe.start(base);
    try {
      return { short: await outputs(llm), long: await Promise.all(LONG.map((r) => llm.generate([r.prompt], r.params).then((g) => g[0]!.outputs[0]!.tokenIds))) };
    } finally {
      await llm.shutdown();
    }
  })());
}

const joinAgent = (t: ExecutionContext, port: number, name: string) => joinAgentAs(t, port, name, TOKEN);

const topology = (lines: string[]) => parseTopology(['placement: thread', 'allow_oversubscription: true', ...lines, 'nodes:', '  - { name: n1, address: 127.0.0.1 }'].join('\n'));
const TP2_ACROSS = () => topology(['tensor_parallel_size: 2', 'stages:', '  - { stage: 0, rank_placements: [thread, { node: n1 }] }']);

async function rankInfo(llm: Troupe, ranks: number): Promise<RankInfo[]> {
  return Promise.all(Array.from({ length: ranks }, (_, r) => llm.system.refFor<{ type: 'info'; replyTo: unknown }>(`troupe/engine/ranks/rank${r}`)
    .ask<RankInfo>((replyTo) => ({ type: 'info', replyTo }), { timeoutMs: 30_000 })));
}

async function startAcross(t: ExecutionContext, parallel: ReturnType<typeof topology>, extra: Record<string, unknown> = {}) {
  const state: { agent?: ChildProcess; port: number } = { port: 0 };
  const llm = await Troupe.start({
    ...base, parallel: { topology: parallel }, ...extra,
    nodeListener: { token: TOKEN, port: 0, joinTimeoutMs: 60_000, onListening: ({ port }) => { state.port = port; state.agent = joinAgent(t, port, 'n1'); } },
  });
  t.teardown(() => llm.shutdown());
  return { llm, state };
}

test.serial('tp2 with one rank here and one on a joined node: tokens and logprobs of one rank and of tp2 on one machine; the all-reduces crossed the link', async (t) => {
  const want = (await oneRank()).short;
  const local = await Troupe.start({ ...base, parallel: { tensorParallelSize: 2, placement: 'thread', allowOversubscription: true } });
  const tp2Here = await outputs(local);
  await local.shutdown();
  t.deepEqual(tp2Here, want);

  const { llm, state } = await startAcross(t, TP2_ACROSS());
  t.deepEqual(await outputs(llm), want);
  const [r0, r1] = await rankInfo(llm, 2);
  t.is(r0!.pid, process.pid, 'tensor rank 0 runs here');
  t.is(r1!.pid, state.agent!.pid!, 'tensor rank 1 runs in the joined node agent');
  t.true(r0!.allReduces > 0 && r0!.allReduces === r1!.allReduces, `${r0!.allReduces} / ${r1!.allReduces}`);
  t.true(r0!.tensorLink!.bytesSent > 0, JSON.stringify(r0!.tensorLink));
  t.is(r0!.tensorLink!.bytesSent, r1!.tensorLink!.bytesReceived, 'what rank 0 sent is what rank 1 folded');
  t.is(r1!.tensorLink!.bytesSent, r0!.tensorLink!.bytesReceived);
  t.is(r0!.tensorLink!.allReduces, r0!.allReduces, 'every all-reduce went over the link');
  // the vocabulary-parallel sums (embedding rows, logits) go as each rank's slice only
  t.true(r0!.tensorLink!.wireBytesSent < r0!.tensorLink!.bytesSent * 0.75, JSON.stringify(r0!.tensorLink));
});

test.serial('tp2 x pp2: stage 0 split between here and a node, stage 1 wholly on the node: one rank\'s tokens and logprobs', async (t) => {
  const want = (await oneRank()).short;
  const { llm, state } = await startAcross(t, topology([
    'tensor_parallel_size: 2', 'pipeline_parallel_size: 2', 'stages:',
    '  - { stage: 0, rank_placements: [thread, { node: n1 }] }', '  - { stage: 1, placement: { node: n1 } }',
  ]));
  t.deepEqual(await outputs(llm), want);
  const info = await rankInfo(llm, 4);
  t.deepEqual(info.map((r) => r.pid), [process.pid, state.agent!.pid!, state.agent!.pid!, state.agent!.pid!]);
  t.true(info.every((r) => r.tensorLink !== undefined && r.tensorLink.allReduces > 0), JSON.stringify(info.map((r) => r.tensorLink)));
  t.true(info[0]!.hiddenSent > 0 && info[2]!.hiddenReceived === info[0]!.hiddenSent);
});

test.serial('a node with a tensor rank SIGKILLed mid-stream and started again under its name: every request completes with one rank\'s tokens', async (t) => {
  const want = (await oneRank()).long;
  const { llm, state } = await startAcross(t, TP2_ACROSS(), { nodeRejoinTimeoutMs: 60_000 });
  const first = state.agent!;
  let seen = false;
  const results = await Promise.all(LONG.map((r) => new Promise<number[] | string>((resolve) => {
    const tokens: number[] = [];
    llm.stream(r.prompt, r.params).subscribe({
      next: (delta) => {
        tokens.push(...delta.tokenIds);
        if (!seen && tokens.length > 0) {
          seen = true;
          first.kill('SIGKILL');
          state.agent = joinAgent(t, state.port, 'n1');
        }
      },
      error: (error: Error) => resolve(error.message),
      complete: () => resolve(tokens),
    });
  })));
  t.deepEqual(results, want);
  t.not(state.agent!.pid, first.pid);
  const [, r1] = await rankInfo(llm, 2);
  t.is(r1!.pid, state.agent!.pid!, 'tensor rank 1 runs in the new agent');
  t.is(llm.engineState.state, 'up');
});

test.serial('a node with a tensor rank that never comes back: every request ends with a 503 error, new ones are refused', async (t) => {
  const { llm, state } = await startAcross(t, TP2_ACROSS(), { nodeRejoinTimeoutMs: 500, engineRecoveryTimeoutMs: 3000 });
  let seen = false;
  const results = await Promise.all(LONG.map((r) => new Promise<{ error?: Error }>((resolve) => {
    llm.stream(r.prompt, r.params).subscribe({
      next: () => { if (!seen) { seen = true; state.agent!.kill('SIGKILL'); } },
      error: (error: Error) => resolve({ error }),
      complete: () => resolve({}),
    });
  })));
  for (const result of results) {
    t.is(result.error?.name, 'EngineUnavailableError');
    t.is((result.error as Error & { status?: number }).status, 503);
  }
  t.is(llm.engineState.state, 'unavailable');
  await t.throwsAsync(llm.generate([LONG[0]!.prompt], LONG[0]!.params), { name: 'EngineUnavailableError' });
});
