// The collectives' shared memory is a memfd: nothing ever appears in /dev/shm,
// whether the group is closed normally or its creator is SIGKILLed mid-run.
import test from 'ava';
import { fork } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { CollectiveGroup, CollectiveRank, type CollectiveGroupDescriptor } from '../../native/collectives.js';
import { planCapacity, standardPlan } from './collectives-inputs.js';
import { attachAll, devShm, startRanks, stopAll } from './collectives-harness.js';

const CREATOR = fileURLToPath(new URL('./fixtures/collective-creator.js', import.meta.url));

test.serial('a group used by child processes and closed leaves nothing in /dev/shm', async (t) => {
  const before = devShm();
  const plan = { ...standardPlan(5), lengths: [10, 20, 30], broadcastBytes: [1, 2, 3] };
  const group = CollectiveGroup.create({ ranks: 2, ...planCapacity(plan) });
  const link = readlinkSync(`/proc/self/fd/${group.descriptor.fd}`);
  t.true(link.startsWith('/memfd:troupe-collectives'), `the region is a memfd (${link})`);
  t.deepEqual(devShm(), before, 'nothing in /dev/shm while the group lives');
  const runners = startRanks('process', [0, 1].map((rank) => ({ descriptor: group.descriptor, rank, plan, timeoutMs: 30_000 })));
  try {
    await attachAll(runners);
    const done = await Promise.all(runners.map((r) => r.next('done')));
    t.deepEqual(done.map((d) => d.kind), ['done', 'done']);
  } finally {
    await stopAll(runners);
    group.close();
  }
  t.deepEqual(devShm(), before);
});

test.serial('a SIGKILLed creator leaves nothing in /dev/shm, and attaching afterwards says the creator is gone', async (t) => {
  const before = devShm();
  const child = fork(CREATOR, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const [ready] = (await once(child, 'message')) as [{ kind: string; descriptor: CollectiveGroupDescriptor; sum: number[] }];
    t.is(ready.kind, 'ready');
    t.deepEqual(ready.sum, [3, 3], 'the creator all-reduced in place on both ranks');
    const d = ready.descriptor;
    t.is(d.pid, child.pid!);
    t.true(readlinkSync(`/proc/${d.pid}/fd/${d.fd}`).startsWith('/memfd:troupe-collectives'), 'the region is a memfd');
    t.deepEqual(devShm(), before, 'nothing in /dev/shm while the creator runs');

    child.kill('SIGKILL');
    const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
    t.is(signal, 'SIGKILL');
    t.deepEqual(devShm(), before, 'nothing in /dev/shm after the creator was killed');
    const err = t.throws(() => CollectiveRank.attach(d, 0), { message: new RegExp(`no process ${d.pid} \\(the group's creator\\) is running`) });
    t.is((err as Error & { code?: string }).code, 'TROUPE_COLLECTIVE_ATTACH');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
