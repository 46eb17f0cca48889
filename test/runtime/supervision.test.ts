// Supervision declared as data: the three strategies, the restart types, the
// intensity limit with escalation, ordered start and stop, stop timeouts, and
// a worker thread killed from outside.
import test from 'ava';
import { supervise, validateSupervisorSpec, type ActorRef, type ChildInfo, type ChildSpec, type Restart, type Strategy, type SupervisorMessage } from '../../runtime/index.js';
import type { ProbeEvent, TestMessage } from './fixtures/actors.js';
import { testActor, withProbe, type TestPlacement } from './helpers.js';

const children = (sup: ActorRef<SupervisorMessage>) => sup.ask<ChildInfo[]>((replyTo) => ({ type: 'children', replyTo }));
const incarnations = async (sup: ActorRef<SupervisorMessage>) => Object.fromEntries((await children(sup)).map((c) => [c.id, c.incarnation]));
const started = (events: ProbeEvent[]) => events.flatMap((e) => (e.event === 'started' ? [e.id] : []));
const stopped = (events: ProbeEvent[]) => events.flatMap((e) => (e.event === 'stopped' ? [e.id] : []));

function abc(probePath: string, restart: Restart = 'permanent', placement: TestPlacement = 'local'): ChildSpec[] {
  return ['a', 'b', 'c'].map((id) => ({ id, restart, actor: testActor(id, probePath, { placement }) }));
}

async function crashB(strategy: Strategy) {
  const { system, probe, probeRef } = await withProbe();
  const sup = await supervise(system, 'sup', { strategy, intensity: 3, periodMs: 10_000, children: abc(probeRef.path) });
  const before = await incarnations(sup);
  await probe.until((events) => started(events).length === 3);
  probe.events.length = 0;
  system.refFor<TestMessage>('sup/b').tell({ type: 'crash', why: 'crash on command' });
  await probe.until((events) => started(events).includes('b'));
  await new Promise((r) => setTimeout(r, 50)); // let any (wrong) extra restart show up
  const after = await incarnations(sup);
  const restarted = Object.keys(before).filter((id) => before[id] !== after[id]);
  return { system, probe, restarted };
}

test('one_for_one restarts only the failed child', async (t) => {
  const { system, probe, restarted } = await crashB('one_for_one');
  t.deepEqual(restarted, ['b']);
  t.deepEqual(started(probe.events), ['b']);
  await system.shutdown();
});

test('one_for_all stops the others in reverse order, then starts all in order', async (t) => {
  const { system, probe, restarted } = await crashB('one_for_all');
  t.deepEqual(restarted, ['a', 'b', 'c']);
  t.deepEqual(stopped(probe.events), ['b', 'c', 'a'], 'b failed; then c and a were stopped, last started first');
  t.deepEqual(started(probe.events), ['a', 'b', 'c']);
  await system.shutdown();
});

test('rest_for_one restarts the failed child and those started after it', async (t) => {
  const { system, probe, restarted } = await crashB('rest_for_one');
  t.deepEqual(restarted, ['b', 'c']);
  t.deepEqual(started(probe.events), ['b', 'c']);
  t.false(stopped(probe.events).includes('a'));
  await system.shutdown();
});

test('children start in order and stop in reverse order', async (t) => {
  const { system, probe, probeRef } = await withProbe();
  const sup = await supervise(system, 'sup', { strategy: 'one_for_one', intensity: 1, periodMs: 1000, children: abc(probeRef.path) });
  await probe.until((events) => started(events).length === 3);
  t.deepEqual(started(probe.events), ['a', 'b', 'c']);
  await system.stop(sup);
  await probe.until((events) => stopped(events).length === 3);
  t.deepEqual(stopped(probe.events), ['c', 'b', 'a']);
  await system.shutdown();
});

test('restart types: permanent always, transient only after a failure, temporary never', async (t) => {
  const { system, probe, probeRef } = await withProbe();
  const spec = (id: string, restart: Restart): ChildSpec => ({ id, restart, actor: testActor(id, probeRef.path) });
  const sup = await supervise(system, 'sup', {
    strategy: 'one_for_one', intensity: 10, periodMs: 10_000,
    children: [spec('perm', 'permanent'), spec('trans1', 'transient'), spec('trans2', 'transient'), spec('temp', 'temporary')],
  });
  await probe.until((events) => started(events).length === 4);
  probe.events.length = 0;
  const tell = (id: string, message: TestMessage) => system.refFor<TestMessage>(`sup/${id}`).tell(message);
  tell('perm', { type: 'stop-self' });
  tell('trans1', { type: 'stop-self' });
  tell('trans2', { type: 'crash', why: 'x' });
  tell('temp', { type: 'crash', why: 'x' });
  await probe.until((events) => started(events).length >= 2 && stopped(events).length >= 4);
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(started(probe.events).sort(), ['perm', 'trans2']);
  const running = Object.fromEntries((await children(sup)).map((c) => [c.id, c.running]));
  t.deepEqual(running, { perm: true, trans1: false, trans2: true, temp: false });
  await system.shutdown();
});

test('past its intensity a supervisor stops its children and escalates to its parent', async (t) => {
  const { system, probe, probeRef } = await withProbe();
  const top = await supervise(system, 'top', {
    strategy: 'one_for_one', intensity: 1, periodMs: 60_000,
    children: [
      { id: 'steady', actor: testActor('steady', probeRef.path) },
      { id: 'mid', supervisor: { strategy: 'one_for_one', intensity: 2, periodMs: 60_000, children: [{ id: 'flaky', actor: testActor('flaky', probeRef.path) }] } },
    ],
  });
  const midBefore = (await incarnations(top)).mid;
  const flaky = system.refFor<TestMessage>('top/mid/flaky');
  for (let n = 1; n <= 2; n++) {
    flaky.tell({ type: 'crash', why: `crash ${n}` });
    await probe.until((events) => started(events).filter((id) => id === 'flaky').length === n + 1);
  }
  const midEvents: string[] = [];
  system.events$.subscribe((e) => {
    if (e.type === 'stopped' && e.path === 'top/mid') midEvents.push(e.reason.kind === 'failure' ? e.reason.error.name : e.reason.kind);
  });
  flaky.tell({ type: 'crash', why: 'crash 3: one too many for mid' });
  // mid gives up (SupervisorEscalationError), top restarts mid, which starts a fresh flaky
  await probe.until((events) => started(events).filter((id) => id === 'flaky').length === 4);
  t.deepEqual(midEvents, ['SupervisorEscalationError']);
  const after = await incarnations(top);
  t.not(after.mid, midBefore, 'the parent restarted the escalating supervisor');
  t.deepEqual(started(probe.events).filter((id) => id === 'steady'), ['steady'], 'one_for_one at the top: steady untouched');

  // top's own intensity (1) is now used up: one more escalation from mid and top fails too
  const topEnd = system.watch(top);
  for (let n = 1; n <= 3; n++) {
    flaky.tell({ type: 'crash', why: `again ${n}` });
    if (n < 3) await probe.until((events) => started(events).filter((id) => id === 'flaky').length === 4 + n);
  }
  const reason = await topEnd;
  await probe.until((events) => stopped(events).includes('steady'));
  t.is(reason.kind, 'failure');
  t.regex(reason.kind === 'failure' ? reason.error.message : '', /supervisor top exceeded its restart intensity/);
  t.true(stopped(probe.events).includes('steady'), 'a failing supervisor stops all its children');
  await system.shutdown();
});

test('a child that ignores stop past its shutdown timeout is killed', async (t) => {
  const { system, probeRef } = await withProbe();
  const sup = await supervise(system, 'sup', {
    strategy: 'one_for_one', intensity: 1, periodMs: 1000,
    children: [
      { id: 'stuck', shutdownTimeoutMs: 200, actor: testActor('stuck', probeRef.path, { hangInPostStop: true }) },
      { id: 'stuck-thread', shutdownTimeoutMs: 200, actor: testActor('stuck-thread', probeRef.path, { hangInPostStop: true, placement: 'thread' }) },
    ],
  });
  const reasons: Record<string, string> = {};
  system.events$.subscribe((e) => e.type === 'stopped' && (reasons[e.path] = e.reason.kind === 'killed' ? `killed: ${e.reason.detail}` : e.reason.kind));
  t.deepEqual(await system.stop(sup, 5000), { kind: 'normal' });
  t.regex(reasons['sup/stuck']!, /killed: did not stop within 200 ms/);
  t.regex(reasons['sup/stuck-thread']!, /killed: did not stop within 200 ms/);
  await system.shutdown();
});

for (const placement of ['thread', 'process'] as const) {
test(`a ${placement === 'thread' ? 'worker thread' : 'child process (SIGKILL)'} killed from outside is restarted and its watchers are told`, async (t) => {
  const { system, probe, probeRef } = await withProbe();
  await supervise(system, 'sup', {
    strategy: 'one_for_one', intensity: 3, periodMs: 10_000,
    children: [{ id: 'rank0', actor: testActor('rank0', probeRef.path, { placement }) }],
  });
  const rank = system.refFor<TestMessage>('sup/rank0');
  const before = system.placementOf(rank);
  t.is(before?.kind, placement);
  const watcher = await system.spawn('watcher', testActor('watcher', probeRef.path));
  watcher.tell({ type: 'watch', target: rank as ActorRef<unknown> });
  const watched = system.watch(rank);
  await new Promise((r) => setTimeout(r, 50));
  await (before as { terminate: () => Promise<number> }).terminate();
  const reason = await watched;
  t.is(reason.kind, 'killed');
  await probe.until((events) => events.some((e) => e.event === 'signal' && e.id === 'watcher' && e.reason === 'killed'));
  await probe.until((events) => started(events).filter((id) => id === 'rank0').length === 2);
  const after = system.placementOf(rank);
  t.is(after?.kind, placement);
  t.not(after?.incarnation, before?.incarnation);
  t.not((after as { id: number }).id, (before as { id: number }).id, `a new ${placement}`);
  // the same ref reaches the new incarnation
  const back = await rank.ask<string>((replyTo) => ({ type: 'echo', payload: 'alive again', replyTo: replyTo as ActorRef<unknown> }));
  t.is(back, 'alive again');
  await system.shutdown();
});
}

test('a bad supervisor spec is refused before anything starts', (t) => {
  const child = { id: 'x', actor: testActor('x') };
  t.throws(() => validateSupervisorSpec({ strategy: 'one_for_some' as Strategy, intensity: 1, periodMs: 1, children: [] }), { message: /strategy must be one of/ });
  t.throws(() => validateSupervisorSpec({ strategy: 'one_for_one', intensity: -1, periodMs: 1, children: [] }), { message: /intensity must be an integer >= 0/ });
  t.throws(() => validateSupervisorSpec({ strategy: 'one_for_one', intensity: 1, periodMs: 1, children: [child, child] }), { message: /two children have the id "x"/ });
  t.throws(() => validateSupervisorSpec({ strategy: 'one_for_one', intensity: 1, periodMs: 1, children: [{ id: 'y' } as ChildSpec] }), { message: /exactly one of "actor" or "supervisor"/ });
});

test('a child added at run time is supervised like the others', async (t) => {
  const { system, probe, probeRef } = await withProbe();
  const sup = await supervise(system, 'sup', { strategy: 'one_for_one', intensity: 3, periodMs: 10_000, children: [] });
  const added = await sup.ask<{ path: string } | { error: string }>((replyTo) => ({ type: 'start-child', child: { id: 'late', actor: testActor('late', probeRef.path) }, replyTo }));
  t.deepEqual(added, { path: 'sup/late' });
  const dup = await sup.ask<{ path: string } | { error: string }>((replyTo) => ({ type: 'start-child', child: { id: 'late', actor: testActor('late') }, replyTo }));
  t.regex((dup as { error: string }).error, /two children have the id "late"/);
  system.refFor<TestMessage>('sup/late').tell({ type: 'crash', why: 'x' });
  await probe.until((events) => started(events).filter((id) => id === 'late').length === 2);
  t.is((await children(sup))[0]!.restarts, 1);
  await system.shutdown();
});
