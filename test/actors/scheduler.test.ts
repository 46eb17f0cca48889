// The scheduler and block pool as plain classes, driven with no transport:
// budgets, chunking, decodes before prefills, preemption, prefix hits, abort,
// stop rules, priorities, and no leaked blocks.
import test from 'ava';
import { BlockPool } from '../../actors/scheduler/block-pool.js';
import type { StopRules } from '../../actors/scheduler/request.js';
import { Scheduler, type SchedulerConfig, type StepPlan } from '../../actors/scheduler/scheduler.js';

const STOP: StopRules = { maxTokens: 8, minTokens: 0, eosTokenIds: [2], ignoreEos: false, stopTokenIds: [] };
const config = (over: Partial<SchedulerConfig> = {}): SchedulerConfig => ({
  maxNumBatchedTokens: 256, maxNumSeqs: 16, maxModelLen: 4096, blockSize: 16, numBlocks: 512, ...over,
});
const prompt = (n: number, seed = 1) => Array.from({ length: n }, (_, i) => 10 + ((i * 7919 + seed * 104729) % 5000));

/** A stand-in model: the next token depends only on the last token and its position (never eos 2). */
function fakeSample(plan: StepPlan): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of plan.sequences) {
    if (s.sample) out.set(s.requestId, 100 + ((s.cachedTokens + s.tokens.length) * 31 + s.tokens[s.tokens.length - 1]! * 17) % 900);
  }
  return out;
}

function runToEnd(scheduler: Scheduler, onStep?: (plan: StepPlan) => void) {
  const outputs = new Map<string, number[]>();
  let steps = 0;
  while (scheduler.hasWork) {
    const plan = scheduler.schedule();
    onStep?.(plan);
    const update = scheduler.update(plan, fakeSample(plan));
    for (const { requestId, token } of update.appended) outputs.set(requestId, [...(outputs.get(requestId) ?? []), token]);
    if (++steps > 10_000) throw new Error('no progress');
  }
  return { outputs, steps };
}

test('a long prompt is prefilled in chunks of the step budget, sampled only at its end', (t) => {
  const s = new Scheduler(config({ maxNumBatchedTokens: 256 }));
  s.add({ id: 'long', promptTokens: prompt(1000), stop: STOP });
  const chunks: number[] = [];
  const samples: boolean[] = [];
  for (let i = 0; i < 4; i++) {
    const plan = s.schedule();
    chunks.push(plan.sequences[0]!.tokens.length);
    samples.push(plan.sequences[0]!.sample);
    t.is(plan.sequences[0]!.cachedTokens, i * 256);
    s.update(plan, fakeSample(plan));
  }
  t.deepEqual(chunks, [256, 256, 256, 232]);
  t.deepEqual(samples, [false, false, false, true]);
  t.is(s.request('long')!.outputTokens.length, 1);
});

test('while a long prompt is prefilled, every running decode advances one token in every step', (t) => {
  const s = new Scheduler(config({ maxNumBatchedTokens: 64 }));
  for (const id of ['a', 'b', 'c']) s.add({ id, promptTokens: prompt(8, id.charCodeAt(0)), stop: { ...STOP, maxTokens: 100 } });
  const first = s.schedule(); // admit and prefill the three short prompts
  s.update(first, fakeSample(first));
  s.add({ id: 'long', promptTokens: prompt(2000), stop: STOP });
  for (let step = 0; step < 20; step++) {
    const plan = s.schedule();
    const decodes = plan.sequences.filter((q) => q.requestId !== 'long');
    t.deepEqual(decodes.map((q) => [q.requestId, q.tokens.length]), [['a', 1], ['b', 1], ['c', 1]], `step ${step}`);
    t.is(plan.sequences.find((q) => q.requestId === 'long')?.tokens.length, 61, 'the prefill gets what the decodes leave');
    t.true(plan.numBatchedTokens <= 64);
    s.update(plan, fakeSample(plan));
  }
});

test('max_num_seqs bounds how many requests run at once', (t) => {
  const s = new Scheduler(config({ maxNumSeqs: 2 }));
  for (let i = 0; i < 5; i++) s.add({ id: `r${i}`, promptTokens: prompt(4, i), stop: STOP });
  const plan = s.schedule();
  t.deepEqual(plan.sequences.map((q) => q.requestId), ['r0', 'r1']);
  t.like(s.stats(), { running: 2, waiting: 3 });
});

test('when blocks run out, the newest request is preempted, recomputed later, and finishes with the same tokens', (t) => {
  const alone = new Map<string, number[]>();
  for (let i = 0; i < 4; i++) {
    const s = new Scheduler(config());
    s.add({ id: `r${i}`, promptTokens: prompt(40, i), stop: { ...STOP, maxTokens: 60 } });
    alone.set(`r${i}`, runToEnd(s).outputs.get(`r${i}`)!);
  }
  // 4 requests of 40 + 60 tokens need 7 blocks each; 16 blocks hold two of them at a time
  const tight = new Scheduler(config({ numBlocks: 16 }));
  for (let i = 0; i < 4; i++) tight.add({ id: `r${i}`, promptTokens: prompt(40, i), stop: { ...STOP, maxTokens: 60 } });
  let preemptedSeen = 0;
  const { outputs } = runToEnd(tight, (plan) => (preemptedSeen += plan.preempted.length));
  t.true(tight.stats().preemptions > 0);
  t.is(tight.stats().preemptions, preemptedSeen);
  for (const [id, tokens] of alone) t.deepEqual(outputs.get(id), tokens, id);
  t.is(tight.kv.pool.numFree, 16, 'no block leaked');
});

test('a shared prefix is found in the cache, reported as hits, and gives the same tokens', (t) => {
  const s = new Scheduler(config());
  const shared = prompt(50, 9);
  s.add({ id: 'first', promptTokens: shared, stop: STOP });
  const first = runToEnd(s).outputs.get('first');
  s.add({ id: 'second', promptTokens: [...shared], stop: STOP });
  const plan = s.schedule();
  t.is(plan.sequences[0]!.cachedTokens, 48, 'three full blocks of 16 are reused');
  t.is(plan.sequences[0]!.tokens.length, 2);
  t.is(s.request('second')!.numCachedTokens, 48);
  s.update(plan, fakeSample(plan));
  const rest = runToEnd(s).outputs.get('second') ?? [];
  t.deepEqual([s.stats().prefixHits], [48]);
  t.deepEqual([...[fakeSample(plan).get('second')!], ...rest], first);
  t.is(s.kv.pool.numFree, 512);
});

test('prefix caching works with chunked prefill: blocks computed by an unfinished prefill are reused', (t) => {
  const s = new Scheduler(config({ maxNumBatchedTokens: 64 }));
  const shared = prompt(300, 3);
  s.add({ id: 'a', promptTokens: shared, stop: STOP });
  s.update(s.schedule(), new Map()); // a: 64 tokens computed
  s.update(s.schedule(), new Map()); // a: 128
  s.add({ id: 'b', promptTokens: [...shared.slice(0, 200), 1, 2, 3], stop: STOP });
  const plan = s.schedule();
  const b = plan.sequences.find((q) => q.requestId === 'b');
  t.is(b, undefined, 'no budget left for b this step: a takes all 64');
  s.update(plan, new Map());
  s.abort('a');
  const next = s.schedule();
  t.is(next.sequences[0]!.requestId, 'b');
  t.is(next.sequences[0]!.cachedTokens, 192, 'the 12 blocks a computed before it was aborted');
});

test('abort frees a request\'s blocks at once, waiting or running', (t) => {
  const s = new Scheduler(config({ numBlocks: 64, maxNumBatchedTokens: 100 }));
  s.add({ id: 'run', promptTokens: prompt(100), stop: STOP });
  s.add({ id: 'wait', promptTokens: prompt(100, 2), stop: STOP });
  const plan = s.schedule();
  t.deepEqual(plan.sequences.map((q) => q.requestId), ['run'], 'run takes the budget; wait waits');
  s.update(plan, fakeSample(plan));
  t.true(s.kv.pool.numFree < 64);
  t.true(s.abort('run'));
  t.true(s.abort('wait'));
  t.false(s.abort('nobody'));
  t.is(s.kv.pool.numFree, 64);
  t.false(s.hasWork);
});

test('stop rules: eos (unless ignored, not before min_tokens), stop_token_ids, max_tokens, max_model_len', (t) => {
  const finishAfter = (stop: Partial<StopRules>, tokens: number[], maxModelLen = 4096) => {
    const s = new Scheduler(config({ maxModelLen }));
    s.add({ id: 'x', promptTokens: prompt(5), stop: { ...STOP, maxTokens: 100, ...stop } });
    for (let i = 0; i < tokens.length; i++) {
      const update = s.update(s.schedule(), new Map([['x', tokens[i]!]]));
      if (update.finished.length) return [i + 1, update.finished[0]!.reason] as const;
    }
    return [tokens.length, 'running'] as const;
  };
  t.deepEqual(finishAfter({}, [50, 2, 50]), [2, 'stop']);
  t.deepEqual(finishAfter({ ignoreEos: true }, [50, 2, 50]), [3, 'running']);
  t.deepEqual(finishAfter({ minTokens: 3 }, [2, 2, 2, 2]), [3, 'stop']);
  t.deepEqual(finishAfter({ stopTokenIds: [77] }, [50, 77]), [2, 'stop']);
  t.deepEqual(finishAfter({ maxTokens: 3 }, [50, 51, 52, 53]), [3, 'length']);
  t.deepEqual(finishAfter({}, [50, 51, 52, 53], 8), [3, 'length']);
});

test('priority policy: lower value first; FCFS among equals', (t) => {
  const s = new Scheduler(config({ policy: 'priority', maxNumSeqs: 1 }));
  s.add({ id: 'low', promptTokens: prompt(4), stop: STOP, priority: 5 });
  s.add({ id: 'high', promptTokens: prompt(4), stop: STOP, priority: -1 });
  s.add({ id: 'high2', promptTokens: prompt(4), stop: STOP, priority: -1 });
  t.deepEqual(s.schedule().sequences.map((q) => q.requestId), ['high']);
});

test('a prompt that cannot fit is refused with the numbers and what to change', (t) => {
  const s = new Scheduler(config({ maxModelLen: 100, numBlocks: 4 }));
  t.throws(() => s.add({ id: 'big', promptTokens: prompt(100), stop: STOP }), { message: /100 tokens, max_model_len is 100.*--max-model-len/ });
  t.throws(() => s.add({ id: 'kv', promptTokens: prompt(90), stop: STOP }), { message: /need 6 KV blocks, the whole cache has 4.*--kv-cache-memory/ });
  t.throws(() => s.add({ id: 'empty', promptTokens: [], stop: STOP }), { message: /prompt is empty/ });
  t.throws(() => new Scheduler(config({ maxNumSeqs: 0 })), { message: /maxNumSeqs must be a positive integer/ });
});

test('block pool: LRU eviction keeps the most recently freed prefix; ref counts guard sharing', (t) => {
  const pool = new BlockPool(4);
  const [a, b] = pool.allocate(2)!;
  pool.cache(a!, 'A');
  pool.cache(b!, 'B');
  pool.free([b!, a!]); // tail first: b, then a
  t.is(pool.cachedBlock('A'), a);
  pool.touch([a!]); // a hit takes A back out of the free queue
  const fresh = pool.allocate(3)!; // two never-used blocks, then the oldest free: b
  t.true(fresh.includes(b!));
  t.is(pool.cachedBlock('B'), undefined, 'B was evicted');
  t.is(pool.cachedBlock('A'), a, 'A is held, so it stays');
  t.is(pool.allocate(1), null);
  t.throws(() => pool.free([a!, a!]), { message: /freed more often than taken/ });
  t.false(pool.resetPrefixCache(), 'refused while blocks are in use');
  pool.free(fresh);
  t.true(pool.resetPrefixCache());
  t.is(pool.cachedBlock('A'), undefined);
});

test('pipeline: a second step in flight takes other requests; an abort in flight frees blocks only when that step returns', (t) => {
  const s = new Scheduler(config({ maxNumBatchedTokens: 64, numBlocks: 32 }));
  for (const id of ['a', 'b', 'c', 'd']) s.add({ id, promptTokens: prompt(32, id.charCodeAt(0)), stop: { ...STOP, maxTokens: 5 } });
  const first = s.schedule();
  t.deepEqual(first.sequences.map((q) => q.requestId), ['a', 'b']);
  const second = s.schedule();
  t.deepEqual(second.sequences.map((q) => q.requestId), ['c', 'd'], 'a and b are in flight');
  t.deepEqual(s.schedule().sequences, [], 'everything is in flight');
  const free = s.kv.pool.numFree;
  s.abort('a');
  t.is(s.kv.pool.numFree, free, 'a\'s blocks stay until its step returns');
  s.update(first, fakeSample(first));
  t.is(s.kv.pool.numFree, free + 2);
  s.update(second, fakeSample(second));
  const third = s.schedule();
  t.deepEqual(third.sequences.map((q) => q.requestId).sort(), ['b', 'c', 'd']);
  s.update(third, fakeSample(third));
  const { outputs } = runToEnd(s);
  t.true(outputs.size > 0);
  t.is(s.kv.pool.numFree, 32);
});

test('pipeline share: with 2 steps in flight, 8 decodes go 4 and 4, so both stages work', (t) => {
  const s = new Scheduler(config());
  for (let i = 0; i < 8; i++) s.add({ id: `r${i}`, promptTokens: prompt(5, i + 1), stop: { ...STOP, maxTokens: 50 } });
  const prefill = s.schedule(s.pipelineShare(2));
  t.is(prefill.sequences.length, 4, 'half of the requests in the first step');
  const other = s.schedule(s.pipelineShare(2));
  t.deepEqual(other.sequences.map((q) => q.requestId), ['r4', 'r5', 'r6', 'r7']);
  t.deepEqual(s.schedule(s.pipelineShare(2)).sequences, [], 'everything is in flight');
  s.update(prefill, fakeSample(prefill));
  const next = s.schedule(s.pipelineShare(2));
  t.deepEqual(next.sequences.map((q) => q.requestId), ['r0', 'r1', 'r2', 'r3'], 'the first half comes back and decodes while the second is in flight');
  t.is(s.pipelineShare(1), Infinity);
});
