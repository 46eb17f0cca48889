// The scheduler's mirror of the ranks' batch and the rank's persistent batch,
// as plain classes: driven through preemption, aborts, an id re-added, chunked
// prefills, penalties and a restart, the rank rebuilds exactly the full state
// (block table, sampling parameters, penalty tokens) the scheduler has, while
// each step carries only what changed; a grammar's mask comes with each step
// that samples its row.
import test from 'ava';
import type { SequenceGrammar } from '../../actors/grammar/sequence-grammar.js';
import { PersistentBatch } from '../../actors/rank/persistent-batch.js';
import type { RankBatchDelta } from '../../actors/messages/rank.js';
import { RankBatchMirror, type RankSampling } from '../../actors/scheduler/rank-batch-mirror.js';
import type { StopRules } from '../../actors/scheduler/request.js';
import { Scheduler, type StepPlan } from '../../actors/scheduler/scheduler.js';

const STOP: StopRules = { maxTokens: 24, minTokens: 0, eosTokenIds: [2], ignoreEos: false, stopTokenIds: [] };
const prompt = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 10 + ((i * 7919 + seed * 104729) % 5000));

function fakeSample(plan: StepPlan<RankSampling>): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of plan.sequences) {
    if (s.sample) out.set(s.requestId, 100 + ((s.cachedTokens + s.tokens.length) * 31 + s.tokens[s.tokens.length - 1]! * 17) % 900);
  }
  return out;
}

/** Deterministic pseudo-random numbers in [0, 1). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const sampling = (i: number): RankSampling => ({
  params: { temperature: 0.7, topP: 0.9, ...(i % 2 === 0 ? { repetitionPenalty: 1.2 } : {}), ...(i % 5 === 0 ? { frequencyPenalty: 0.5 } : {}) },
  seed: 1000 + i,
});

test('the rank rebuilds each step from deltas exactly as the full state would say it, through preemption, aborts and a re-added id', (t) => {
  const scheduler = new Scheduler<RankSampling>({ maxNumBatchedTokens: 96, maxNumSeqs: 12, maxModelLen: 4096, blockSize: 8, numBlocks: 48 });
  const mirror = new RankBatchMirror(scheduler);
  const rank = new PersistentBatch();
  const random = lcg(7);
  let next = 0;
  const add = (id = `r${next}`) => {
    const i = next++;
    scheduler.add({ id, promptTokens: prompt(5 + Math.floor(random() * 40), i), stop: STOP, sampling: sampling(i) });
  };
  for (let i = 0; i < 10; i++) add();
  let steps = 0;
  let addedTotal = 0;
  let grownTotal = 0;
  let droppedTotal = 0;
  const held = new Set<string>();
  while (scheduler.hasWork) {
    if (steps % 7 === 3 && next < 40) add();
    if (steps % 11 === 5) {
      // abort something running, then bring the same id back (the front's requeue does this)
      const victim = `r${Math.floor(random() * next)}`;
      if (scheduler.abort(victim)) add(victim);
    }
    const plan = scheduler.schedule();
    const { batch, sequences } = mirror.step(plan.sequences);
    addedTotal += batch.added.length;
    grownTotal += batch.grown.length;
    droppedTotal += batch.dropped.length;
    t.is(batch.reset === true, steps === 0, 'only the first step resets');
    rank.apply(batch);
    const rebuilt = rank.sequences(sequences);
    plan.sequences.forEach((seq, i) => {
      const request = scheduler.request(seq.requestId)!;
      const penalties = request.sampling!.params.repetitionPenalty !== undefined || request.sampling!.params.frequencyPenalty !== undefined;
      const step = rebuilt[i]!;
      t.deepEqual(Array.from(step.blockTable), [...scheduler.kv.table(request)], `step ${steps}: ${seq.requestId}'s pages`);
      t.deepEqual(step.tokens, seq.tokens);
      t.is(step.cachedTokens, seq.cachedTokens);
      if (!seq.sample) return t.is(step.sample, undefined);
      t.is(step.sample!.outputIndex, request.outputTokens.length);
      t.is(step.sample!.seed, request.sampling!.seed);
      t.is(step.sample!.params.temperature, 0.7);
      if (penalties) {
        t.deepEqual(Array.from(step.sample!.promptTokens!), [...request.promptTokens]);
        t.deepEqual(Array.from(step.sample!.outputTokens!), [...request.outputTokens], `step ${steps}: ${seq.requestId}'s output so far`);
      } else t.is(step.sample!.outputTokens, undefined);
    });
    // a request the rank still holds is never sent again, and a decode carries its one token
    for (const id of batch.dropped) held.delete(id);
    for (const r of batch.added) {
      t.false(held.has(r.requestId), `step ${steps}: ${r.requestId} re-sent while held`);
      held.add(r.requestId);
    }
    for (const s of sequences) if (s.cachedTokens + 1 === scheduler.request(s.requestId)!.numTokens) t.is(s.tokens.length, 1);
    scheduler.update(plan, fakeSample(plan));
    if (++steps > 5000) throw new Error('no progress');
  }
  t.true(scheduler.stats().preemptions > 0, 'the pool is small enough to preempt');
  t.true(grownTotal > 0, 'tables grew by deltas');
  t.true(droppedTotal > 0);
  t.true(addedTotal > next, 'preempted and re-added requests were sent again');
  // the last finished requests are dropped at the next step; the ranks hold only what runs
  const { batch } = mirror.step([]);
  rank.apply(batch);
  t.is(rank.size, 0);
  t.is(mirror.size, 0);
});

test('a fresh mirror (a restarted scheduler) resets the rank, then adds what it runs', (t) => {
  const rank = new PersistentBatch();
  const delta = (over: Partial<RankBatchDelta>): RankBatchDelta => ({ dropped: [], added: [], grown: [], ...over });
  rank.apply(delta({ added: [{ requestId: 'stale', blockTable: [3], promptLength: 2, params: {}, seed: 1 }] }));
  const scheduler = new Scheduler<RankSampling>({ maxNumBatchedTokens: 64, maxNumSeqs: 4, maxModelLen: 512, blockSize: 8, numBlocks: 16 });
  scheduler.add({ id: 'a', promptTokens: prompt(9, 1), stop: STOP, sampling: sampling(1), outputTokens: [7, 8] });
  const { batch, sequences } = new RankBatchMirror(scheduler).step(scheduler.schedule().sequences);
  t.true(batch.reset);
  rank.apply(batch);
  t.false(rank.has('stale'));
  const [step] = rank.sequences(sequences);
  t.deepEqual(step!.tokens, [...prompt(9, 1), 7, 8], 'recompute: prompt and the tokens so far');
  t.is(step!.sample!.outputIndex, 2);
});

test('a step naming a request the rank does not hold fails loudly', (t) => {
  const rank = new PersistentBatch();
  t.throws(() => rank.sequences([{ requestId: 'ghost', tokens: [1], cachedTokens: 0 }]), { message: /request ghost, which this rank does not hold/ });
  t.throws(() => rank.apply({ dropped: [], added: [], grown: [{ requestId: 'ghost', blocks: [1] }] }), { message: /pages for request ghost/ });
});

test('a grammar row carries a fresh mask on each step it samples, none while it prefills; other rows carry none', (t) => {
  const scheduler = new Scheduler<RankSampling>({ maxNumBatchedTokens: 16, maxNumSeqs: 4, maxModelLen: 512, blockSize: 8, numBlocks: 32 });
  const mirror = new RankBatchMirror(scheduler);
  const rank = new PersistentBatch();
  // the matcher's part the mirror uses: each mask says how many tokens it had accepted
  let accepted = 0;
  const masksMade: number[] = [];
  const grammar = { nextMask: () => { masksMade.push(accepted); return Uint32Array.of(accepted, 0xffffffff); } } as unknown as SequenceGrammar;
  scheduler.add({ id: 'g', promptTokens: prompt(20, 1), stop: { ...STOP, maxTokens: 4 }, sampling: sampling(1), grammar });
  scheduler.add({ id: 'p', promptTokens: prompt(3, 2), stop: { ...STOP, maxTokens: 4 }, sampling: sampling(2) });
  let sampledSteps = 0;
  while (scheduler.hasWork) {
    const plan = scheduler.schedule();
    const { batch, sequences } = mirror.step(plan.sequences);
    for (const r of batch.added) t.false('mask' in r, 'a mask is never part of the held request');
    rank.apply(batch);
    const rebuilt = rank.sequences(sequences);
    sequences.forEach((s, i) => {
      if (s.requestId === 'p') return t.is(s.mask, undefined);
      if (s.outputIndex === undefined) return t.is(s.mask, undefined, 'a chunk that samples nothing needs no mask');
      sampledSteps++;
      t.deepEqual(Array.from(s.mask!), [accepted, 0xffffffff]);
      t.is(rebuilt[i]!.sample!.mask, s.mask, 'the rank samples with the step\'s mask');
    });
    const update = scheduler.update(plan, fakeSample(plan));
    accepted += update.appended.filter((a) => a.requestId === 'g').length;
  }
  t.is(sampledSteps, 4);
  t.deepEqual(masksMade, [0, 1, 2, 3], 'one mask per sampled step, after the tokens accepted so far');
});
