// Bad arguments, bad descriptors and misuse are rejected with clear errors
// (TypeError / RangeError / Error with a TROUPE_COLLECTIVE_* code), never a crash.
// Several ranks live in this one thread here: the root of a broadcast does not
// block on its first send, and the *Async calls wait on the libuv pool.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CollectiveGroup,
  CollectiveRank,
  isCollectiveError,
  isCollectiveGroupDescriptor,
  type CollectiveErrorCode,
  type CollectiveGroupDescriptor,
} from '../../native/collectives.js';

function code(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

function throwsCode(t: ExecutionContext, fn: () => unknown, expectations: { instanceOf?: new (...a: never[]) => Error; message: RegExp }, want: CollectiveErrorCode): void {
  const err = t.throws(fn, expectations as never);
  t.is(code(err), want, `code of: ${err?.message}`);
}

test('createGroup rejects bad sizes with TypeError / RangeError', (t) => {
  const create = (o: unknown) => () => CollectiveGroup.create(o as never);
  throwsCode(t, create({ ranks: 0, capacityBytes: 64 }), { instanceOf: RangeError, message: /createGroup: ranks must be an integer in 1\.\.64, got 0/ }, 'TROUPE_COLLECTIVE_RANGE');
  throwsCode(t, create({ ranks: 65, capacityBytes: 64 }), { instanceOf: RangeError, message: /ranks must be an integer in 1\.\.64, got 65/ }, 'TROUPE_COLLECTIVE_RANGE');
  throwsCode(t, create({ ranks: 2.5, capacityBytes: 64 }), { instanceOf: RangeError, message: /ranks/ }, 'TROUPE_COLLECTIVE_RANGE');
  throwsCode(t, create({ ranks: '2', capacityBytes: 64 }), { instanceOf: TypeError, message: /ranks must be a number, got string '2'/ }, 'TROUPE_COLLECTIVE_TYPE');
  throwsCode(t, create({ ranks: 2, capacityBytes: 0 }), { instanceOf: RangeError, message: /capacityBytes must be an integer in 4\.\./ }, 'TROUPE_COLLECTIVE_RANGE');
  throwsCode(t, create({ ranks: 2, capacityBytes: 6 }), { instanceOf: RangeError, message: /capacityBytes must be a multiple of 4/ }, 'TROUPE_COLLECTIVE_RANGE');
  throwsCode(t, create({ ranks: 2, capacityBytes: 2 ** 40 }), { instanceOf: RangeError, message: /capacityBytes/ }, 'TROUPE_COLLECTIVE_RANGE');
  throwsCode(t, create({ ranks: 2, capacityBytes: 64, broadcastCapacityBytes: 0 }), { instanceOf: RangeError, message: /broadcastCapacityBytes/ }, 'TROUPE_COLLECTIVE_RANGE');
});

test('attach rejects malformed descriptors and descriptors that do not match the region', (t) => {
  const group = CollectiveGroup.create({ ranks: 2, capacityBytes: 4096, broadcastCapacityBytes: 100 });
  const d = group.descriptor;
  t.true(isCollectiveGroupDescriptor(d));
  t.deepEqual(JSON.parse(JSON.stringify(d)), { ...d }, 'the descriptor is plain data');
  const attach = (desc: unknown, rank = 0) => () => CollectiveRank.attach(desc as CollectiveGroupDescriptor, rank);
  const tmp = mkdtempSync(join(tmpdir(), 'troupe-coll-'));
  const fds: number[] = [];
  try {
    throwsCode(t, attach(42), { instanceOf: TypeError, message: /descriptor must be the object CollectiveGroup\.descriptor gave, got number 42/ }, 'TROUPE_COLLECTIVE_TYPE');
    throwsCode(t, attach({ ...d, kind: 'other' }), { instanceOf: TypeError, message: /descriptor\.kind must be 'troupe\.shm-collectives'/ }, 'TROUPE_COLLECTIVE_TYPE');
    const { fd: _fd, ...noFd } = d;
    throwsCode(t, attach(noFd), { instanceOf: TypeError, message: /descriptor\.fd must be a number, got undefined/ }, 'TROUPE_COLLECTIVE_TYPE');
    throwsCode(t, attach({ ...d, id: 'xyz' }), { instanceOf: TypeError, message: /descriptor\.id must be a string of 1 to 16 hex digits/ }, 'TROUPE_COLLECTIVE_TYPE');
    throwsCode(t, attach(d, 2), { instanceOf: RangeError, message: /rank 2 is out of range for a group of 2 ranks/ }, 'TROUPE_COLLECTIVE_RANGE');
    throwsCode(t, attach({ ...d, version: 99 }), { message: /descriptor version 99 is not the version this addon speaks \(1\)/ }, 'TROUPE_COLLECTIVE_ATTACH');
    throwsCode(t, attach({ ...d, ranks: 3 }), { message: /descriptor is inconsistent: bytes \d+ do not match ranks 3/ }, 'TROUPE_COLLECTIVE_ATTACH');
    throwsCode(t, attach({ ...d, capacityBytes: 8192 }), { message: /descriptor is inconsistent/ }, 'TROUPE_COLLECTIVE_ATTACH');
    const otherId = ((BigInt(`0x${d.id}`) ^ 1n).toString(16)).padStart(16, '0');
    throwsCode(t, attach({ ...d, id: otherId }), { message: /does not hold the described group: its id differs/ }, 'TROUPE_COLLECTIVE_ATTACH');

    // A pid that is certainly gone: a child that already exited.
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    throwsCode(t, attach({ ...d, pid: gone }), { message: new RegExp(`no process ${gone} \\(the group's creator\\) is running: it exited or crashed`) }, 'TROUPE_COLLECTIVE_ATTACH');
    throwsCode(t, attach({ ...d, fd: 1_000_000 }), { message: /has no fd 1000000: the creator closed the group/ }, 'TROUPE_COLLECTIVE_ATTACH');

    // fds of this process that are not the group.
    const small = join(tmp, 'small');
    writeFileSync(small, 'hello');
    fds.push(openSync(small, 'r+'));
    throwsCode(t, attach({ ...d, fd: fds[0] }), { message: /is not this group \(its size is 5 bytes, expected \d+\)/ }, 'TROUPE_COLLECTIVE_ATTACH');
    const zeros = join(tmp, 'zeros');
    writeFileSync(zeros, new Uint8Array(d.bytes));
    fds.push(openSync(zeros, 'r+'));
    throwsCode(t, attach({ ...d, fd: fds[1] }), { message: /does not hold the described group: bad magic/ }, 'TROUPE_COLLECTIVE_ATTACH');
    fds.push(openSync('/dev/null', 'r+'));
    throwsCode(t, attach({ ...d, fd: fds[2] }), { message: /is not this group \(not a shared-memory file\)/ }, 'TROUPE_COLLECTIVE_ATTACH');

    // Each rank attaches once; closing frees it.
    const r0 = group.attach(0);
    throwsCode(t, () => group.attach(0), { message: new RegExp(`rank 0 is already attached \\(by pid ${process.pid}\\)`) }, 'TROUPE_COLLECTIVE_ATTACH');
    r0.close();
    group.attach(0).close();

    // A closed creator: its fd is gone (or reused by something else).
    const other = CollectiveGroup.create({ ranks: 1, capacityBytes: 64 });
    const od = other.descriptor;
    other.close();
    t.true(other.closed);
    const err = t.throws(attach(od));
    t.is(code(err), 'TROUPE_COLLECTIVE_ATTACH');
    t.regex(err!.message, /has no fd|is not this group|does not hold the described group/);
  } finally {
    for (const fd of fds) closeSync(fd);
    group.close();
  }
});

test('calls reject bad arguments; a closed handle says so', (t) => {
  const group = CollectiveGroup.create({ ranks: 2, capacityBytes: 64, broadcastCapacityBytes: 32 });
  const r0 = group.attach(0);
  try {
    throwsCode(t, () => r0.allReduce(new Float32Array(17)), { instanceOf: RangeError, message: /allReduce: 17 elements \(68 bytes\) exceed the group's capacity of 64 bytes/ }, 'TROUPE_COLLECTIVE_RANGE');
    throwsCode(t, () => r0.allReduce(new Float64Array(4) as never), { instanceOf: TypeError, message: /allReduce: data must be a Float32Array, got Float64Array/ }, 'TROUPE_COLLECTIVE_TYPE');
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      throwsCode(t, () => r0.allReduce(new Float32Array(1), { timeoutMs }), { instanceOf: RangeError, message: /allReduce: timeoutMs must be > 0/ }, 'TROUPE_COLLECTIVE_RANGE');
    }
    throwsCode(t, () => r0.broadcast(2, new Uint8Array(1)), { instanceOf: RangeError, message: /broadcast: root must be an integer in 0\.\.63|root 2 is out of range for a group of 2 ranks/ }, 'TROUPE_COLLECTIVE_RANGE');
    throwsCode(t, () => r0.broadcast(0), { instanceOf: TypeError, message: /the root \(rank 0\) must pass the bytes to send/ }, 'TROUPE_COLLECTIVE_TYPE');
    throwsCode(t, () => r0.broadcast(0, new Uint16Array(2) as never), { instanceOf: TypeError, message: /broadcast: data must be a Uint8Array, got Uint16Array/ }, 'TROUPE_COLLECTIVE_TYPE');
    throwsCode(t, () => r0.broadcast(0, new Uint8Array(33)), { instanceOf: RangeError, message: /broadcast: 33 bytes exceed the group's broadcast capacity of 32 bytes/ }, 'TROUPE_COLLECTIVE_RANGE');
    r0.close();
    throwsCode(t, () => r0.allReduce(new Float32Array(1)), { message: /allReduce: the group handle is closed/ }, 'TROUPE_COLLECTIVE_CLOSED');
    group.close();
    throwsCode(t, () => group.bumpEpoch(), { message: /bumpEpoch: the group handle is closed/ }, 'TROUPE_COLLECTIVE_CLOSED');
    t.true(isCollectiveError(new Error('x')) === false);
  } finally {
    r0.close();
    group.close();
  }
});

test('one call at a time per handle; different lengths are a mismatch on every rank, and the group goes on', async (t) => {
  const group = CollectiveGroup.create({ ranks: 2, capacityBytes: 64 });
  const [r0, r1] = [group.attach(0, { timeoutMs: 30_000 }), group.attach(1, { timeoutMs: 30_000 })];
  try {
    const a = new Float32Array([1, 2, 3]);
    const pending = r0.allReduceAsync(a);
    await sleep(20);
    throwsCode(t, () => r0.allReduce(new Float32Array(3)), { message: /another collective call is in progress on this handle/ }, 'TROUPE_COLLECTIVE_BUSY');
    await r1.allReduceAsync(new Float32Array([10, 20, 30]));
    t.deepEqual([...(await pending)], [11, 22, 33]);

    const [e0, e1] = await Promise.allSettled([r0.allReduceAsync(new Float32Array(3)), r1.allReduceAsync(new Float32Array(4))]);
    for (const e of [e0, e1]) {
      t.is(e!.status, 'rejected');
      const reason = (e as PromiseRejectedResult).reason as Error;
      t.true(isCollectiveError(reason, 'TROUPE_COLLECTIVE_MISMATCH'));
      t.regex(reason.message, /ranks passed different lengths in generation 2: rank 0 has 3, rank 1 has 4 elements/);
    }
    const [x, y] = await Promise.all([r0.allReduceAsync(new Float32Array([0.5])), r1.allReduceAsync(new Float32Array([0.25]))]);
    t.deepEqual([x[0], y[0]], [0.75, 0.75]);
    t.true(r0.stats().allReduces === 2 && r1.stats().allReduces === 2, 'the mismatched call is not counted');
  } finally {
    r0.close();
    r1.close();
    group.close();
  }
});

test('broadcast: a too-small receive buffer is a RangeError and the message stays pending; a wrong root is a mismatch', (t) => {
  const group = CollectiveGroup.create({ ranks: 3, capacityBytes: 64, broadcastCapacityBytes: 1000 });
  const [r0, r1, r2] = [0, 1, 2].map((r) => group.attach(r, { timeoutMs: 2000 })) as [CollectiveRank, CollectiveRank, CollectiveRank];
  try {
    const msg = Uint8Array.from({ length: 100 }, (_, i) => i * 7);
    t.is(r0.broadcast(0, msg), msg, 'the first send does not wait');
    throwsCode(t, () => r1.broadcast(0, new Uint8Array(10)), { instanceOf: RangeError, message: /the message is 100 bytes but the receive buffer has 10; call again with a buffer of at least 100 bytes \(the message stays pending\)/ }, 'TROUPE_COLLECTIVE_RANGE');
    t.deepEqual([...r1.broadcast(0)], [...msg]);
    const big = new Uint8Array(200);
    const view = r2.broadcast(0, big);
    t.is(view.buffer, big.buffer);
    t.is(view.length, 100);
    t.deepEqual([...view], [...msg]);

    t.is(r0.broadcast(0, new Uint8Array([1])).length, 1);
    throwsCode(t, () => r2.broadcast(1), { message: /broadcast: rank 2 expected root 1 in generation 2 but rank 0 sent it/ }, 'TROUPE_COLLECTIVE_MISMATCH');
    throwsCode(t, () => r2.broadcast(0), { message: /unusable after an earlier failure \(broadcast root mismatch\); re-create the group/ }, 'TROUPE_COLLECTIVE_BROKEN');
  } finally {
    for (const r of [r0, r1, r2]) r.close();
    group.close();
  }
});
