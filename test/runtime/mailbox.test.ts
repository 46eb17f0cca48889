// Bounded mailboxes: the two overflow policies, on the plain class and on live
// actors in both placements; depth is observable while messages wait.
import test from 'ava';
import { BoundedMailbox, MailboxFullError, type ActorRef } from '../../runtime/index.js';
import type { TestMessage } from './fixtures/actors.js';
import { gate, PLACEMENTS, testActor, withProbe } from './helpers.js';

test('reject: a full mailbox refuses and keeps what it holds', (t) => {
  const box = new BoundedMailbox<number>({ capacity: 2, overflow: 'reject' });
  t.true(box.offer(1).accepted);
  t.true(box.offer(2).accepted);
  t.false(box.offer(3).accepted);
  t.deepEqual(box.drain(), [1, 2]);
  t.like(box.stats(), { depth: 0, enqueued: 2, rejected: 1, dropped: 0 });
});

test('drop-oldest: a full mailbox discards its oldest message', (t) => {
  const box = new BoundedMailbox<number>({ capacity: 3, overflow: 'drop-oldest' });
  const dropped: number[] = [];
  for (let i = 1; i <= 7; i++) {
    const result = box.offer(i);
    if (result.accepted && result.dropped !== undefined) dropped.push(result.dropped);
  }
  t.deepEqual(dropped, [1, 2, 3, 4]);
  t.deepEqual(box.drain(), [5, 6, 7]);
  t.like(box.stats(), { dropped: 4, rejected: 0 });
});

test('the ring buffer wraps around correctly', (t) => {
  const box = new BoundedMailbox<number>({ capacity: 4, overflow: 'reject' });
  const out: number[] = [];
  for (let i = 0; i < 99; i++) {
    t.true(box.offer(i).accepted);
    if (i % 3 === 2) out.push(box.shift()!, box.shift()!, box.shift()!); // 3 in, 3 out: head walks around the 4 slots
  }
  box.offer(99);
  out.push(...box.drain());
  t.deepEqual(out, Array.from({ length: 100 }, (_, i) => i));
});

test('bad mailbox options are refused with a clear error', (t) => {
  t.throws(() => new BoundedMailbox({ capacity: 0, overflow: 'reject' }), { message: /capacity must be a positive integer/ });
  t.throws(() => new BoundedMailbox({ capacity: 2, overflow: 'drop-newest' as never }), { message: /"reject" or "drop-oldest"/ });
});

for (const placement of PLACEMENTS) {
  test(`${placement}: reject policy — send and ask get MailboxFullError, a sending actor gets a signal`, async (t) => {
    const { system, probe, probeRef } = await withProbe();
    const busy = await system.spawn('busy', testActor('busy', probeRef.path, { placement, mailbox: { capacity: 2, overflow: 'reject' } }));
    const sender = await system.spawn('sender', testActor('sender', probeRef.path));
    const blocker = gate();
    await busy.send({ type: 'block', untilFileExists: blocker.path }); // being handled, not queued
    await new Promise((r) => setTimeout(r, 50));
    await busy.send({ type: 'count', n: 1 });
    await busy.send({ type: 'count', n: 2 });
    t.is((await system.inspect(busy)).mailbox.depth, 2, 'depth is observable');
    const full = await t.throwsAsync(busy.send({ type: 'count', n: 3 }), { instanceOf: MailboxFullError });
    t.regex(full!.message, /busy is full \(2 messages/);
    await t.throwsAsync(busy.ask(() => ({ type: 'ignore' })), { instanceOf: MailboxFullError });
    sender.tell({ type: 'tell', to: busy as ActorRef<unknown>, message: { type: 'count', n: 4 } });
    await probe.until((events) => events.some((e) => e.event === 'signal' && e.id === 'sender' && e.signal === 'delivery-failed'));
    t.like(probe.events.find((e) => e.event === 'signal' && e.id === 'sender'), { target: 'busy', reason: 'MailboxFullError' });
    blocker.open();
    t.teardown(blocker.remove);
    await probe.until((events) => events.filter((e) => e.event === 'got' && e.id === 'busy').length === 2);
    const got = probe.events.flatMap((e) => (e.event === 'got' && e.id === 'busy' ? [e.n] : []));
    t.deepEqual(got, [1, 2], 'what was accepted is handled, in order; nothing refused sneaks in');
    t.like((await system.inspect(busy)).mailbox, { depth: 0, rejected: 3 });
    await system.shutdown();
  });

  test(`${placement}: drop-oldest policy keeps the newest messages and counts the dropped`, async (t) => {
    const { system, probe, probeRef } = await withProbe();
    const telemetry = await system.spawn('telemetry', testActor('telemetry', probeRef.path, { placement, mailbox: { capacity: 3, overflow: 'drop-oldest' } }));
    const blocker = gate();
    await telemetry.send({ type: 'block', untilFileExists: blocker.path });
    await new Promise((r) => setTimeout(r, 50));
    for (let n = 1; n <= 10; n++) await telemetry.send({ type: 'count', n } satisfies TestMessage);
    t.like((await system.inspect(telemetry)).mailbox, { depth: 3, dropped: 7 });
    blocker.open();
    t.teardown(blocker.remove);
    await probe.until((events) => events.filter((e) => e.event === 'got').length === 3);
    t.deepEqual(probe.events.flatMap((e) => (e.event === 'got' ? [e.n] : [])), [8, 9, 10]);
    await system.shutdown();
  });
}
