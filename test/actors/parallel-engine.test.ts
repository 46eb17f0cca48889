// Tensor and pipeline parallelism through the whole engine on the tiny model:
// tp2, pp2 and tp2 x pp2 on threads and on processes give the same greedy
// tokens, seeded samples and log-probabilities as one rank, and the layout
// really happened (pids, weight bytes per rank, all-reduces, hand-offs).
// A SIGKILLed rank process restarts the rank group once and every request
// still completes with the same output. Impossible topologies are refused
// before anything starts. (The logits themselves are compared bit for bit in
// test/models/parallel-model.test.ts; the two-node layout is in
// parallel-node.test.ts.)
import test, { type ExecutionContext } from 'ava';
import { lastValueFrom, tap, toArray } from 'rxjs';
import type { RequestDelta } from '../../actors/front/request-record.js';
import { Troupe, type TroupeOptions } from '../../actors/engine/troupe.js';
import type { GenerationParams } from '../../actors/engine/request-params.js';
import type { RankInfo } from '../../actors/messages/rank.js';
import type { SchedulerActorStats, SchedulerMessage } from '../../actors/messages/scheduler.js';
import type { ChildInfo, SupervisorMessage } from '../../runtime/index.js';
import { generatedModel, randomTokens } from '../models/helpers.js';

const MODEL = generatedModel('tiny', 7);
const VOCAB = 128256;
const quiet = { log: () => {} };

async function engine(t: ExecutionContext, options: Partial<TroupeOptions> = {}) {
  const llm = await Troupe.start({ model: MODEL, kvCacheMemory: '4MiB', maxModelLen: 512, threads: 1, maxNumBatchedTokens: 64, ...quiet, ...options });
  t.teardown(() => llm.shutdown());
  return llm;
}

/** Greedy and seeded requests, with top logprobs, prompts long enough to be chunked. */
const REQUESTS = Array.from({ length: 6 }, (_, i) => ({
  prompt: randomTokens(5 + ((i * 29) % 70), VOCAB, 500 + i),
  params: {
    maxTokens: 10, ignoreEos: true, logprobs: 2,
    ...(i % 2 === 0 ? { temperature: 0 } : { temperature: 0.8, topP: 0.95, seed: 1234 + i }),
  } satisfies GenerationParams,
}));

/** Long enough that a rank can be killed while they run. */
const LONG = REQUESTS.map((r) => ({ ...r, params: { ...r.params, maxTokens: 150 } }));

type Output = { tokens: number[]; logprobs: unknown };
async function run(llm: Troupe, requests = REQUESTS): Promise<Output[]> {
  const results = await Promise.all(requests.map((r) => llm.generate([r.prompt], r.params)));
  return results.map((g) => ({ tokens: g[0]!.outputs[0]!.tokenIds, logprobs: g[0]!.outputs[0]!.logprobs }));
}

let expected: Promise<{ short: Output[]; long: Output[] }> | undefined;
let wholeRankBytes = 0;
/** One rank's outputs (REQUESTS, then LONG). */
function baseline(): Promise<{ short: Output[]; long: Output[] }> {
  return (expected ??= (async () => {
    const llm = await Troupe.start({ model: MODEL, kvCacheMemory: '4MiB', maxModelLen: 512, threads: 1, maxNumBatchedTokens: 64, ...quiet });
    try {
      wholeRankBytes = (await rankInfo(llm, 1))[0]!.residentWeightBytes;
      return { short: await run(llm), long: await run(llm, LONG) };
    } finally {
      await llm.shutdown();
    }
  })());
}

async function rankInfo(llm: Troupe, ranks: number): Promise<RankInfo[]> {
  return Promise.all(Array.from({ length: ranks }, (_, r) =>
    llm.system.refFor<{ type: 'info'; replyTo: unknown }>(`troupe/engine/ranks/rank${r}`).ask<RankInfo>((replyTo) => ({ type: 'info', replyTo }), { timeoutMs: 30_000 })));
}

function parallel(tp: number, pp: number, placement: 'thread' | 'process'): Partial<TroupeOptions> {
  return { parallel: { tensorParallelSize: tp, pipelineParallelSize: pp, placement, allowOversubscription: true } };
}

for (const placement of ['thread', 'process'] as const) {
  for (const [tp, pp] of [[2, 1], [1, 2], [2, 2]] as const) {
    test.serial(`tp${tp} x pp${pp} on ${placement === 'thread' ? 'threads' : 'processes'}: same tokens and logprobs as one rank, and the layout happened`, async (t) => {
      const want = (await baseline()).short;
      t.true(want.every((o) => o.tokens.length === 10));
      const llm = await engine(t, parallel(tp, pp, placement));
      t.deepEqual(await run(llm), want);
      const stats = await llm.system.refFor<SchedulerMessage>('troupe/engine/scheduler').ask<SchedulerActorStats>((replyTo) => ({ type: 'stats', replyTo }), { timeoutMs: 30_000 });
      t.is(stats.maxInFlight, pp, 'as many steps in flight as there are stages');
      const info = await rankInfo(llm, tp * pp);
      t.deepEqual(info.map((i) => [i.stage, i.tpRank]), info.map((_, r) => [Math.floor(r / tp), r % tp]));
      const pids = new Set(info.map((i) => i.pid));
      if (placement === 'process') {
        t.is(pids.size, tp * pp, 'one process per rank');
        t.false(pids.has(process.pid));
      } else {
        t.deepEqual([...pids], [process.pid]);
        t.is(new Set(info.map((i) => i.threadId)).size, tp * pp, 'one worker thread per rank');
      }
      for (const i of info) {
        if (tp > 1) t.true(i.allReduces > 0, `rank ${i.stage}/${i.tpRank} made no all-reduce`);
        else t.is(i.allReduces, 0);
        if (pp > 1) t.true(i.stage === 0 ? i.hiddenSent > 0 && i.hiddenReceived === 0 : i.hiddenReceived > 0 && i.hiddenSent === 0);
        t.true(i.steps > 0);
      }
      // ~1/tp of a stage's weights per rank; the stages together hold the model (tiny is mostly the
      // tied embedding, which the first and the last stage both hold)
      for (let s = 0; s < pp; s++) {
        const stage = info.filter((i) => i.stage === s).map((i) => i.residentWeightBytes);
        const total = stage.reduce((a, b) => a + b, 0);
        for (const b of stage) t.true(Math.abs(b / total - 1 / tp) < 0.01, `stage ${s}: ${stage.join(', ')}`);
        if (pp === 1) t.true(Math.abs(total / wholeRankBytes - 1) < 0.01, `${total} vs ${wholeRankBytes}`);
      }
    });
  }
}

test.serial('a SIGKILLed rank process mid-generation: the rank group restarts once, every request completes with the same output', async (t) => {
  const want = (await baseline()).long;
  const llm = await engine(t, parallel(2, 1, 'process'));
  const victim = (await rankInfo(llm, 2))[1]!.pid;
  let killed = false;
  let seen = 0;
  // kill once request 0 has streamed 3 tokens: every request is then mid-generation
  const killAfter3 = tap((d: RequestDelta) => {
    seen += d.tokenIds.length;
    if (!killed && seen >= 3) {
      killed = true;
      t.log(`SIGKILL to rank 1 (pid ${victim}) after ${seen} tokens of request 0`);
      process.kill(victim, 'SIGKILL');
    }
  });
  const streams = LONG.map((r, i) => {
    const deltas = llm.stream([...r.prompt], r.params);
    return lastValueFrom((i === 0 ? deltas.pipe(killAfter3) : deltas).pipe(toArray())).then((list) => ({ i, deltas: list }));
  });
  const done = await Promise.all(streams);
  t.true(killed && seen > 3, 'the rank was killed mid-generation');
  for (const { i, deltas } of done) {
    t.deepEqual(deltas.flatMap((d) => d.tokenIds), want[i]!.tokens, `request ${i}: every token once, the same`);
    t.deepEqual(deltas.flatMap((d) => d.logprobs ?? []), want[i]!.logprobs);
  }
  const children = await llm.system.refFor<SupervisorMessage>('troupe/engine/ranks').ask<ChildInfo[]>((replyTo) => ({ type: 'children', replyTo }), { timeoutMs: 30_000 });
  t.is(children.reduce((n, c) => n + c.restarts, 0), 1, JSON.stringify(children));
  const after = await rankInfo(llm, 2);
  t.false(after.some((i) => i.pid === victim), 'the killed rank was replaced');
});

test.serial('impossible topologies are refused before start with readable errors', async (t) => {
  const start = (options: Partial<TroupeOptions>) => Troupe.start({ model: MODEL, kvCacheMemory: '4MiB', maxModelLen: 512, ...quiet, ...options });
  await t.throwsAsync(start({ parallel: { tensorParallelSize: 3, allowOversubscription: true } }), { message: /tensor_parallel_size 3 does not divide the 4 attention heads; use one of 1, 2, 4/ });
  await t.throwsAsync(start({ parallel: { tensorParallelSize: 64, pipelineParallelSize: 1 } }), { message: /64 ranks on this machine need at least 64 cores/ });
  await t.throwsAsync(start({ parallel: { tensorParallelSize: 2, pipelineParallelSize: 4 } }), { message: /pipeline_parallel_size 4 exceeds the model's 2 layers/ });
  await t.throwsAsync(start({ parallel: { tensorParallelSize: 4, pipelineParallelSize: 2, allowOversubscription: true } }), { message: /8 ranks in threads of this process, and Node's libuv pool runs 4 native steps at once/ });
  await t.throwsAsync(start({ parallel: { tensorParallelSize: 2, allowOversubscription: true }, kvCacheMemory: '64TiB' }), { message: /need .* \(weights \+ KV\), it has/ });
  await t.throwsAsync(start({ parallel: { topology: { ...(await import('../../topology/load.js')).parseTopology('tensor_parallel_size: 2\nthreads_per_rank: 64') } } }), { message: /threads_per_rank = 128 compute threads, this machine has \d+ cores/ });
  await t.throwsAsync(start({ parallel: { tensorParallelSize: 2, allowOversubscription: true }, quantization: 'int4' }), { message: /--quantization: unknown method 'int4'/ });
});
