// tell / ask / send, binary payloads, timeouts and death watch, run the same
// way against an actor in this thread and one in a worker thread.
import test from 'ava';
import { threadId } from 'node:worker_threads';
import { AskTimeoutError, ActorStoppedError, UnserializableMessageError, type ActorRef } from '../../runtime/index.js';
import type { TestMessage } from './fixtures/actors.js';
import { PLACEMENTS, testActor, withProbe } from './helpers.js';

type Echo = ActorRef<TestMessage>;
const echo = <T>(ref: Echo, payload: T) => ref.ask<T>((replyTo) => ({ type: 'echo', payload, replyTo: replyTo as ActorRef<unknown> }));

for (const placement of PLACEMENTS) {
  test(`${placement}: ask round trip keeps binary payloads intact`, async (t) => {
    const { system } = await withProbe();
    const ref = await system.spawn('echo', testActor('echo', '', { placement }));
    const floats = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5 - 3);
    const bytes = Uint8Array.from({ length: 777 }, (_, i) => (i * 31) % 256);
    const pooled = Buffer.from('a small pooled buffer');
    const payload = {
      floats, bytes, pooled, big: new BigInt64Array([1n, -2n]),
      nested: { list: [new Uint16Array([1, 2, 65535]), 'text', 3.25, null], map: new Map([['k', new Int32Array([-7])]]) },
    };
    const expected = structuredClone({ ...payload, pooled: Uint8Array.from(pooled) });
    const back = await echo(ref, payload);
    t.deepEqual(Array.from(back.floats), Array.from(expected.floats));
    t.true(back.floats instanceof Float32Array);
    t.deepEqual(Array.from(back.bytes), Array.from(expected.bytes));
    t.true(Buffer.isBuffer(back.pooled));
    t.is(back.pooled.toString(), 'a small pooled buffer');
    t.deepEqual(Array.from(back.big), [1n, -2n]);
    t.deepEqual(Array.from(back.nested.list[0] as Uint16Array), [1, 2, 65535]);
    t.deepEqual(Array.from(back.nested.map.get('k')!), [-7]);
    if (placement === 'thread') {
      // Out of band: the whole-buffer arrays were moved through the transfer list, so the sender's copies are detached.
      t.is(floats.byteLength, 0);
      t.is(bytes.byteLength, 0);
      t.is(pooled.toString(), 'a small pooled buffer', 'a view on part of a pooled buffer is copied, not taken');
    } else if (placement === 'process') {
      t.is(floats.byteLength, 4000, 'to another process the bytes are written as binary frames; the sender keeps its copy');
    } else {
      t.is(back.floats, floats, 'in-thread messages pass by reference');
    }
    await system.shutdown();
  });

  test(`${placement}: a SharedArrayBuffer is shared, not copied${placement === 'process' ? ' (or refused: it cannot reach another process)' : ''}`, async (t) => {
    const { system } = await withProbe();
    const ref = await system.spawn('filler', testActor('filler', '', { placement }));
    const shared = new Float32Array(new SharedArrayBuffer(4 * 64));
    const fill = () => ref.ask<'done'>((replyTo) => ({ type: 'fill', shared, value: 2.5, replyTo }));
    if (placement === 'process') {
      await t.throwsAsync(fill(), { instanceOf: UnserializableMessageError, message: /not shareable with another process/ });
    } else {
      t.is(await fill(), 'done');
      t.true(shared.every((v) => v === 2.5));
    }
    await system.shutdown();
  });

  test(`${placement}: the actor runs where it was placed`, async (t) => {
    const { system } = await withProbe();
    const ref = await system.spawn('where', testActor('where', '', { placement }));
    const info = await ref.ask<{ threadId: number; pid: number; incarnation: string; path: string }>((replyTo) => ({ type: 'whoami', replyTo }));
    t.is(info.path, 'where');
    t.is(info.threadId !== threadId, placement === 'thread', 'another thread exactly when placed in a thread');
    t.is(info.pid !== process.pid, placement === 'process', 'another process exactly when placed in a process');
    const where = system.placementOf(ref);
    t.is(where?.kind, placement);
    if (placement === 'process') t.is((where as { id: number }).id, info.pid);
    await system.shutdown();
  });

  test(`${placement}: ask times out when no reply comes`, async (t) => {
    const { system } = await withProbe();
    const ref = await system.spawn('silent', testActor('silent', '', { placement }));
    const error = await t.throwsAsync(ref.ask(() => ({ type: 'ignore' }), { timeoutMs: 100 }), { instanceOf: AskTimeoutError });
    t.regex(error!.message, /silent.*100 ms/);
    t.regex((error as AskTimeoutError).correlationId, /^[A-Za-z0-9_-]{21}$/, 'correlation ids come from nanoid');
    await system.shutdown();
  });

  test(`${placement}: death watch tells the watcher when and why`, async (t) => {
    const { system, probe, probeRef } = await withProbe();
    const watcher = await system.spawn('watcher', testActor('watcher', probeRef.path));
    const target = await system.spawn('target', testActor('target', probeRef.path, { placement }));
    watcher.tell({ type: 'watch', target });
    const watched = system.watch(target);
    await new Promise((r) => setTimeout(r, 50));
    target.tell({ type: 'crash', why: 'boom on command' });
    const reason = await watched;
    t.is(reason.kind, 'failure');
    t.regex(reason.kind === 'failure' ? reason.error.message : '', /boom on command/);
    await probe.until((events) => events.some((e) => e.event === 'signal' && e.id === 'watcher' && e.target === 'target'));
    const signal = probe.events.find((e) => e.event === 'signal' && e.id === 'watcher');
    t.like(signal, { signal: 'terminated', target: 'target', reason: 'failure' });
    // the path is free now: messages to it are refused, not lost silently
    await t.throwsAsync(target.send({ type: 'ignore' }), { instanceOf: ActorStoppedError });
    await system.shutdown();
  });

  test(`${placement}: stop runs postStop and reports a normal stop`, async (t) => {
    const { system, probe, probeRef } = await withProbe();
    const ref = await system.spawn('stoppable', testActor('stoppable', probeRef.path, { placement }));
    const reason = await system.stop(ref);
    t.deepEqual(reason, { kind: 'normal' });
    await probe.until((events) => events.some((e) => e.event === 'stopped' && e.id === 'stoppable'));
    t.is(system.placementOf(ref), undefined);
    await system.shutdown();
  });
}

test('a worker-thread actor and a local actor talk to each other through refs', async (t) => {
  const { system, probe, probeRef } = await withProbe();
  const local = await system.spawn('local', testActor('local', probeRef.path));
  const remote = await system.spawn('remote', testActor('remote', probeRef.path, { placement: 'thread' }));
  // remote tells local, which reports to the probe
  remote.tell({ type: 'tell', to: local as ActorRef<unknown>, message: { type: 'count', n: 7 } });
  await probe.until((events) => events.some((e) => e.event === 'got' && e.id === 'local' && e.n === 7));
  // and a worker actor can watch a main-thread actor
  remote.tell({ type: 'watch', target: local as ActorRef<unknown> });
  await new Promise((r) => setTimeout(r, 50));
  await system.stop(local);
  await probe.until((events) => events.some((e) => e.event === 'signal' && e.id === 'remote' && e.target === 'local'));
  t.like(probe.events.find((e) => e.event === 'signal' && e.id === 'remote'), { signal: 'terminated', reason: 'normal' });
  await system.shutdown();
});

test('a message to a path where nothing runs is a dead letter and an ask is refused at once', async (t) => {
  const { system } = await withProbe();
  const letters: string[] = [];
  system.events$.subscribe((e) => e.type === 'dead-letter' && letters.push(e.to));
  const nobody = system.refFor<TestMessage>('nobody');
  nobody.tell({ type: 'ignore' });
  await t.throwsAsync(nobody.ask(() => ({ type: 'ignore' }), { timeoutMs: 5000 }), { instanceOf: ActorStoppedError });
  t.deepEqual(letters, ['nobody', 'nobody']);
  t.deepEqual(await system.watch(nobody), { kind: 'noproc' });
  await system.shutdown();
});
