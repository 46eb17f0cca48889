// A rank that dies inside an all-reduce, or never arrives, releases its peers
// with an error: within the timeout (the error names the missing rank), or at
// once when the supervisor bumps the epoch (the error says epoch, not
// timeout). Wall time is never asserted.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CollectiveGroup } from '../../native/collectives.js';
import type { CollectivePlan } from './collectives-inputs.js';
import { attachAll, startRanks, stopAll, type RankMessage } from './collectives-harness.js';

const PLAN: CollectivePlan = { seed: 7, lengths: Array.from({ length: 8 }, (_, i) => 1001 + i), broadcastBytes: [] };
const AT = 3; // the iteration the victim dies in

/** Best effort: waits until the process's main (JS) thread sleeps on a futex, i.e. inside a collective's wait. */
async function blockedInFutex(pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    try {
      if (readFileSync(`/proc/${pid}/wchan`, 'utf8').includes('futex')) return true;
    } catch {
      return false;
    }
    await sleep(10);
  }
  return false;
}

/** 3 child-process ranks; rank 2 enters the all-reduce of iteration AT alone and is SIGKILLed there. */
async function killVictimInsideAllReduce(t: import('ava').ExecutionContext, survivorTimeoutMs: number, bump: boolean): Promise<RankMessage[]> {
  const group = CollectiveGroup.create({ ranks: 3, capacityBytes: 64 << 10 });
  const base = { descriptor: group.descriptor, plan: PLAN, at: AT };
  const runners = startRanks('process', [
    { ...base, rank: 0, timeoutMs: survivorTimeoutMs, behaviour: 'pause-at' },
    { ...base, rank: 1, timeoutMs: survivorTimeoutMs, behaviour: 'pause-at' },
    { ...base, rank: 2, timeoutMs: 60_000, behaviour: 'victim-at' },
  ]);
  const [s0, s1, victim] = runners as [typeof runners[0], typeof runners[0], typeof runners[0]];
  try {
    await attachAll(runners);
    const paused = await Promise.all([s0.next('paused'), s1.next('paused')]);
    t.deepEqual(paused.map((m) => m.iteration), [AT, AT]);
    t.is((await victim.next('entering')).iteration, AT);
    t.true(await blockedInFutex(victim.pid!), 'the victim sleeps inside allReduce');
    await victim.kill();
    t.is((await victim.exited).signal, 'SIGKILL');

    s0.send({ kind: 'go' });
    s1.send({ kind: 'go' });
    if (bump) {
      // Let the survivors reach their wait (best effort), then release them.
      await Promise.all([blockedInFutex(s0.pid!), blockedInFutex(s1.pid!)]);
      t.is(group.bumpEpoch(), 1);
    }
    const failed = await Promise.all([s0.next('failed'), s1.next('failed')]);
    for (const f of failed) t.is(f.kind, 'failed', `rank ${f.rank} was released with an error`);
    // The victim published its contribution to iteration AT before it died, so
    // the survivors finish AT and are stuck in AT + 1.
    for (const f of failed) t.true(f.iteration === AT + 1, `rank ${f.rank} failed in iteration ${f.iteration}`);
    return failed;
  } finally {
    await stopAll(runners);
    group.close();
  }
}

test('child processes: a rank SIGKILLed inside an all-reduce releases its peers with a timeout error naming it', async (t) => {
  const failed = await killVictimInsideAllReduce(t, 1500, false);
  for (const f of failed) {
    t.is(f.code, 'TROUPE_COLLECTIVE_TIMEOUT');
    t.regex(f.message as string, /^allReduce timed out after 1500 ms \(rank [01], generation \d+\): rank\(s\) 2 did not arrive$/);
  }
});

test('child processes: bumpEpoch after a rank was SIGKILLed releases its peers long before their timeout', async (t) => {
  const failed = await killVictimInsideAllReduce(t, 120_000, true);
  for (const f of failed) {
    t.is(f.code, 'TROUPE_COLLECTIVE_ABORTED');
    t.regex(f.message as string, /collective aborted: epoch changed/);
    t.notRegex(f.message as string, /timed out/);
  }
});

test('worker threads: a rank that never arrives releases its peers with a timeout error naming it', async (t) => {
  const group = CollectiveGroup.create({ ranks: 3, capacityBytes: 64 << 10 });
  const base = { descriptor: group.descriptor, plan: PLAN };
  const runners = startRanks('thread', [
    { ...base, rank: 0, timeoutMs: 800 },
    { ...base, rank: 1, timeoutMs: 800 },
    { ...base, rank: 2, timeoutMs: 800, behaviour: 'absent' },
  ]);
  try {
    await attachAll(runners);
    const failed = await Promise.all([runners[0]!.next('failed'), runners[1]!.next('failed')]);
    for (const f of failed) {
      t.is(f.kind, 'failed');
      t.is(f.iteration, 0);
      t.is(f.code, 'TROUPE_COLLECTIVE_TIMEOUT');
      t.regex(f.message as string, /^allReduce timed out after 800 ms \(rank [01], generation 1\): rank\(s\) 2 did not arrive$/);
    }
    runners[2]!.send({ kind: 'exit' });
  } finally {
    await stopAll(runners);
    group.close();
  }
});

test('worker threads: bumpEpoch releases ranks waiting for one that never arrives, and the group stays aborted', async (t) => {
  const group = CollectiveGroup.create({ ranks: 3, capacityBytes: 64 << 10 });
  const base = { descriptor: group.descriptor, plan: PLAN };
  const runners = startRanks('thread', [
    { ...base, rank: 0, timeoutMs: 120_000 },
    { ...base, rank: 1, timeoutMs: 120_000 },
    { ...base, rank: 2, timeoutMs: 120_000, behaviour: 'absent' },
  ]);
  try {
    await attachAll(runners);
    await sleep(100); // let them block (either way they must fail with the epoch error)
    t.is(group.epoch, 0);
    t.is(group.bumpEpoch(), 1);
    t.is(group.epoch, 1);
    const failed = await Promise.all([runners[0]!.next('failed'), runners[1]!.next('failed')]);
    for (const f of failed) {
      t.is(f.code, 'TROUPE_COLLECTIVE_ABORTED');
      t.regex(f.message as string, /collective aborted: epoch changed \(a peer died\?\)/);
      t.notRegex(f.message as string, /timed out/);
    }
    runners[2]!.send({ kind: 'exit' });
    // Unusable until re-created: new ranks cannot attach.
    const err = t.throws(() => group.attach(0), { message: /aborted \(epoch 1\); re-create it/ });
    t.is((err as Error & { code?: string }).code, 'TROUPE_COLLECTIVE_ABORTED');
  } finally {
    await stopAll(runners);
    group.close();
  }
});

test('main thread, async: bumpEpoch rejects a pending allReduceAsync; later calls on the handle fail too', async (t) => {
  const group = CollectiveGroup.create({ ranks: 2, capacityBytes: 1024 });
  const r0 = group.attach(0, { timeoutMs: 120_000 });
  try {
    const pending = r0.allReduceAsync(new Float32Array(10));
    await sleep(50);
    group.bumpEpoch();
    const err = await t.throwsAsync(pending, { message: /collective aborted: epoch changed/ });
    t.is((err as Error & { code?: string }).code, 'TROUPE_COLLECTIVE_ABORTED');
    t.throws(() => r0.allReduce(new Float32Array(10)), { message: /unusable after an earlier failure|aborted/ });
    t.throws(() => r0.broadcast(0, new Uint8Array(1)), { message: /unusable after an earlier failure|aborted/ });
  } finally {
    r0.close();
    group.close();
  }
});
