// Pipeline parallelism across nodes on 127.0.0.1: stage 0 on this process's
// worker thread, stage 1 in a real `troupe node --join` agent (a child
// process that joined with a token). Same tokens and logprobs as one rank;
// the second stage really ran in the agent's process.
import test, { type ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { planRanks, rankGroupSpec } from '../../actors/engine/rank-group.js';
import { Troupe } from '../../actors/engine/troupe.js';
import type { RankOptions } from '../../actors/rank/rank-actor.js';
import { Checkpoint } from '../../models/checkpoint.js';
import { modelChecksum } from '../../models/checksum.js';
import type { RankInfo } from '../../actors/messages/rank.js';
import type { GenerationParams } from '../../actors/engine/request-params.js';
import { parseTopology } from '../../topology/load.js';
import { generatedModel, randomTokens } from '../models/helpers.js';
import { assertAllUnavailable, joinAgent as joinAgentAs } from './node-agent.js';

const MODEL = generatedModel('tiny', 7);
const TOKEN = randomBytes(32).toString('hex');
const quiet = { log: () => {} };
const base = { model: MODEL, kvCacheMemory: '4MiB', maxModelLen: 512, threads: 1, maxNumBatchedTokens: 64, ...quiet };

const REQUESTS = Array.from({ length: 4 }, (_, i) => ({
  prompt: randomTokens(6 + i * 17, 128256, 900 + i),
  params: { maxTokens: 8, ignoreEos: true, logprobs: 1, ...(i % 2 ? { temperature: 0.7, seed: 77 + i } : { temperature: 0 }) },
}));

async function outputs(llm: Troupe) {
  const results = await Promise.all(REQUESTS.map((r) => llm.generate([r.prompt], r.params)));
  return results.map((g) => ({ tokens: g[0]!.outputs[0]!.tokenIds, logprobs: g[0]!.outputs[0]!.logprobs }));
}

const joinAgent = (t: ExecutionContext, port: number, name: string) => joinAgentAs(t, port, name, TOKEN);

test('pp2 with the second stage on a joined node (127.0.0.1) gives one rank\'s tokens and logprobs', async (t) => {
  const single = await Troupe.start(base);
  const want = await outputs(single);
  await single.shutdown();

  let agent: ChildProcess | undefined;
  const topology = parseTopology([
    'pipeline_parallel_size: 2',
    'placement: thread',
    'allow_oversubscription: true',
    'stages:',
    '  - { stage: 1, placement: { node: n1 } }',
    'nodes:',
    '  - { name: n1, address: 127.0.0.1 }',
  ].join('\n'));
  const llm = await Troupe.start({
    ...base,
    parallel: { topology },
    nodeListener: { token: TOKEN, port: 0, joinTimeoutMs: 60_000, onListening: ({ port }) => { agent = joinAgent(t, port, 'n1'); } },
  });
  t.teardown(() => llm.shutdown());
  t.deepEqual(await outputs(llm), want);
  const info = await Promise.all([0, 1].map((r) => llm.system.refFor<{ type: 'info'; replyTo: unknown }>(`troupe/engine/ranks/rank${r}`)
    .ask<RankInfo>((replyTo) => ({ type: 'info', replyTo }), { timeoutMs: 30_000 })));
  t.is(info[0]!.pid, process.pid, 'stage 0 runs here');
  t.is(info[1]!.pid, agent!.pid!, 'stage 1 runs in the joined node agent');
  t.true(info[0]!.hiddenSent > 0 && info[1]!.hiddenReceived === info[0]!.hiddenSent, JSON.stringify(info));
  t.like(llm.system.placementOf(llm.system.refFor('troupe/engine/ranks/rank1')), { kind: 'node', id: 'n1' });
});

test('a topology that places stages on nodes without a listener, or tensor rank 0 of stage 0 on a node, is refused before start', async (t) => {
  const onNode = (tp: number) => parseTopology(`tensor_parallel_size: ${tp}\npipeline_parallel_size: 2\nallow_oversubscription: true\nstages:\n  - { stage: 1, placement: { node: n1 } }\nnodes:\n  - { name: n1, address: 127.0.0.1 }`);
  await t.throwsAsync(Troupe.start({ ...base, parallel: { topology: onNode(1) } }), { message: /stages are placed on nodes \(n1\): give nodeListener/ });
  await t.throwsAsync(Troupe.start({ ...base, parallel: { topology: onNode(2) } }), { message: /stages are placed on nodes \(n1\): give nodeListener/ });
  const rank0OnNode = parseTopology('tensor_parallel_size: 2\nallow_oversubscription: true\nstages:\n  - { stage: 0, rank_placements: [{ node: n1 }, thread] }\nnodes:\n  - { name: n1, address: 127.0.0.1 }');
  await t.throwsAsync(Troupe.start({ ...base, parallel: { topology: rank0OnNode } }), { message: /stage 0, tensor rank 0 must run on this machine \(the leader\)/ });
});

test("a rank placed on a node carries the leader's model checksum (it refuses other files: test/models/checksum.test.ts)", (t) => {
  const topology = parseTopology('pipeline_parallel_size: 2\nallow_oversubscription: true\nstages:\n  - { stage: 1, placement: { node: n1 } }\nnodes:\n  - { name: n1, address: 127.0.0.1 }');
  const spec = rankGroupSpec(planRanks(topology, MODEL, 'bfloat16'), Checkpoint.open(MODEL).config, { model: MODEL, modelOptions: {} });
  const options = (id: string) => (spec.children.find((c) => c.id === id)!.actor!.args![0] as RankOptions);
  t.is(options('rank1').expectedChecksum, modelChecksum(MODEL));
  t.is(options('rank0').expectedChecksum, undefined, 'the leader\'s own rank reads the files the checksum came from');
  t.deepEqual(spec.nodes, ['n1']);
});

const PP2_ON_NODE = () => parseTopology([
  'pipeline_parallel_size: 2', 'placement: thread', 'allow_oversubscription: true',
  'stages:', '  - { stage: 1, placement: { node: n1 } }', 'nodes:', '  - { name: n1, address: 127.0.0.1 }',
].join('\n'));

/** Streams every request; resolves with its tokens, or the error its stream ended with. */
function streamAll(llm: Troupe, requests: { prompt: number[]; params: GenerationParams }[], onFirstDelta: () => void) {
  let seen = false;
  return Promise.all(requests.map((r) => new Promise<{ tokens: number[] } | { error: Error }>((resolve) => {
    const tokens: number[] = [];
    llm.stream(r.prompt, r.params).subscribe({
      next: (delta) => {
        tokens.push(...delta.tokenIds);
        if (!seen && tokens.length > 0) { seen = true; onFirstDelta(); }
      },
      error: (error: Error) => resolve({ error }),
      complete: () => resolve({ tokens }),
    });
  })));
}

const LONG: { prompt: number[]; params: GenerationParams }[] = REQUESTS.map((r) => ({ prompt: r.prompt, params: (({ logprobs: _omit, ...rest }) => ({ ...rest, maxTokens: 48 }))(r.params) }));

test.serial('a node agent SIGKILLed mid-stream and started again under its name: every request completes with the same tokens', async (t) => {
  const single = await Troupe.start(base);
  const want = await Promise.all(LONG.map((r) => single.generate([r.prompt], r.params).then((g) => g[0]!.outputs[0]!.tokenIds)));
  await single.shutdown();
  let port = 0;
  let agent: ChildProcess | undefined;
  const llm = await Troupe.start({
    ...base, parallel: { topology: PP2_ON_NODE() }, nodeRejoinTimeoutMs: 60_000,
    nodeListener: { token: TOKEN, port: 0, joinTimeoutMs: 60_000, onListening: (address) => { port = address.port; agent = joinAgent(t, port, 'n1'); } },
  });
  t.teardown(() => llm.shutdown());
  const first = agent!;
  const results = await streamAll(llm, LONG, () => {
    first.kill('SIGKILL');
    agent = joinAgent(t, port, 'n1');
  });
  t.deepEqual(results.map((r) => ('tokens' in r ? r.tokens : r.error.message)), want);
  t.not(agent!.pid, first.pid, 'the rank ran in the new agent');
  t.is(llm.engineState.state, 'up');
});

test.serial('a node that never comes back: every request ends with a 503 error within the timeout, new ones are refused, the engine says so', async (t) => {
  let agent: ChildProcess | undefined;
  const llm = await Troupe.start({
    ...base, parallel: { topology: PP2_ON_NODE() }, nodeRejoinTimeoutMs: 500, engineRecoveryTimeoutMs: 3000,
    nodeListener: { token: TOKEN, port: 0, joinTimeoutMs: 60_000, onListening: ({ port }) => { agent = joinAgent(t, port, 'n1'); } },
  });
  t.teardown(() => llm.shutdown());
  const results = await streamAll(llm, LONG, () => agent!.kill('SIGKILL'));
  assertAllUnavailable(t, results);
  t.is(llm.engineState.state, 'unavailable');
  await t.throwsAsync(llm.generate([LONG[0]!.prompt], LONG[0]!.params), { name: 'EngineUnavailableError' });
});
