// Shared-memory collectives: broadcast and all-reduce with 2, 3 and 4 ranks,
// on worker threads and on child processes, many iterations in a row (both
// slot parities reused, odd lengths, 1 MB vectors). Every rank's all-reduce
// result must equal the sequential rank-order float32 sum bit for bit, and
// the inputs are such that another order gives other bits (checked), so the
// test proves the order.
import test, { type ExecutionContext } from 'ava';
import { CollectiveGroup } from '../../native/collectives.js';
import {
  bitDifferences,
  broadcastPayload,
  orderedSum,
  planCapacity,
  rankInput,
  rankOrderSum,
  standardPlan,
  type CollectivePlan,
} from './collectives-inputs.js';
import { PLACEMENTS, attachAll, startRanks, stopAll, type Placement } from './collectives-harness.js';
import { assertBitwiseEqual } from './helpers.js';

interface Expected {
  sums: Float32Array[];
  /** Elements (over all iterations) whose bits change when the ranks are summed in reverse order. */
  reorderedDiffers: number;
  elements: number;
}

const expectedCache = new Map<number, Expected>();

function expected(plan: CollectivePlan, ranks: number): Expected {
  const cached = expectedCache.get(ranks);
  if (cached) return cached;
  const sums: Float32Array[] = [];
  let reorderedDiffers = 0;
  let elements = 0;
  plan.lengths.forEach((n, it) => {
    const inputs = Array.from({ length: ranks }, (_, r) => rankInput(plan.seed, it, r, n));
    const sum = rankOrderSum(inputs);
    sums.push(sum);
    const reversed = inputs.map((_, r) => ranks - 1 - r);
    reorderedDiffers += bitDifferences(sum, orderedSum(inputs, reversed));
    elements += n;
  });
  const e = { sums, reorderedDiffers, elements };
  expectedCache.set(ranks, e);
  return e;
}

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

async function runGroup(t: ExecutionContext, placement: Placement, ranks: number): Promise<void> {
  const plan = standardPlan(1000 + ranks);
  const group = CollectiveGroup.create({ ranks, ...planCapacity(plan) });
  // On threads the last rank uses the async variants (Promise, libuv pool), mixed with sync peers.
  const runners = startRanks(
    placement,
    Array.from({ length: ranks }, (_, rank) => ({
      descriptor: group.descriptor,
      rank,
      plan,
      timeoutMs: 30_000,
      useAsync: placement === 'thread' && rank === ranks - 1,
    })),
  );
  try {
    const attached = await attachAll(runners);
    const done = await Promise.all(runners.map((r) => r.next('done')));
    for (const d of done) if (d.kind === 'failed') t.fail(`rank ${d.rank} failed at iteration ${d.iteration}: ${d.message}`);
    if (done.some((d) => d.kind !== 'done')) return;

    // Placement really happened: threads share our pid, processes each have their own.
    const pids = attached.map((a) => a.pid as number);
    if (placement === 'thread') t.true(pids.every((p) => p === process.pid), 'ranks run in this process');
    else t.is(new Set([...pids, process.pid]).size, ranks + 1, 'every rank runs in its own process');

    const want = expected(plan, ranks);
    for (const d of done) {
      const results = d.results as Float32Array[];
      t.is(results.length, plan.lengths.length);
      results.forEach((got, it) => {
        if (!sameBytes(got, want.sums[it]!)) assertBitwiseEqual(t, got, want.sums[it]!, `rank ${d.rank} iteration ${it} (${plan.lengths[it]} elements)`);
      });
      const stats = d.stats as { allReduces: number; broadcastsSent: number; broadcastsReceived: number };
      t.is(stats.allReduces, plan.lengths.length, `rank ${d.rank} counted its all-reduces`);
      t.is(stats.broadcastsSent + stats.broadcastsReceived, plan.broadcastBytes.length, `rank ${d.rank} counted its broadcasts`);

      // Broadcasts: root = iteration % ranks; every other rank got the root's bytes.
      const received = d.received as Uint8Array[];
      let k = 0;
      plan.broadcastBytes.forEach((bytes, it) => {
        if (it % ranks === d.rank) return;
        const got = received[k++]!;
        t.true(Buffer.from(got).equals(Buffer.from(broadcastPayload(plan.seed, it, bytes))), `rank ${d.rank} broadcast ${it} (${bytes} bytes)`);
      });
      t.is(k, received.length);
    }

    // The inputs make order visible: summing in another order changes bits.
    if (ranks >= 3) {
      t.true(want.reorderedDiffers > want.elements / 100, `reverse order differs in ${want.reorderedDiffers} of ${want.elements} elements`);
      t.log(`summing in reverse rank order changes ${want.reorderedDiffers} of ${want.elements} elements`);
    } else {
      t.log('2 ranks: v0 + v1 == v1 + v0 exactly in IEEE arithmetic, so order cannot show; 3 and 4 ranks prove it');
    }
  } finally {
    await stopAll(runners);
    group.close();
  }
}

for (const placement of PLACEMENTS) {
  for (const ranks of [2, 3, 4]) {
    test(`${placement === 'thread' ? 'worker threads' : 'child processes'}: all-reduce and broadcast with ${ranks} ranks equal the rank-order sum bit for bit, 20 iterations in a row`, async (t) => {
      await runGroup(t, placement, ranks);
    });
  }
}
