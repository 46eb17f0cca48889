// Node placement: a node agent (a real `troupe node --join` process) joins a
// leader on 127.0.0.1, hosts actors, and is declared dead by heartbeat; the
// listener refuses wrong tokens and survives malformed or oversized frames.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ActorSystem, type ActorRef } from '../../runtime/index.js';
import { NodeListener } from '../../runtime/node/listener.js';
import { frameHeader, FRAME_MESSAGE } from '../../runtime/wire.js';
import type { TestMessage } from './fixtures/actors.js';
import { testActor, withProbe } from './helpers.js';

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));
const TOKEN = 'test-join-token';

function startAgent(t: ExecutionContext, port: number, token: string | null, name: string) {
  const args = [CLI, 'node', '--join', `127.0.0.1:${port}`, '--name', name, ...(token === null ? [] : ['--token', token])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TROUPE_JOIN_TOKEN: '' } });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => { child.kill('SIGKILL'); });
  return { child, exited, output: () => output };
}

async function leader(t: ExecutionContext, options: { heartbeatMs?: number; heartbeatTimeoutMs?: number; maxFrameBytes?: number } = {}) {
  const { system, probe, probeRef } = await withProbe();
  const listener = await NodeListener.listen(system, { token: TOKEN, port: 0, ...options });
  t.teardown(async () => { await system.shutdown(1000); await listener.close(); });
  return { system, probe, probeRef, listener, port: listener.address.port };
}

test('the listener binds 127.0.0.1 by default', async (t) => {
  const { listener } = await leader(t);
  t.is(listener.address.host, '127.0.0.1');
});

test('a node joins, hosts an actor in its own process, round-trips binary payloads', async (t) => {
  const { system, listener, port } = await leader(t);
  const agent = startAgent(t, port, TOKEN, 'n1');
  const node = await listener.waitForNode('n1');
  t.is(node.pid, agent.child.pid!);
  const ref = await system.spawn('on-node', testActor('on-node', '', { placement: { node: 'n1' } }));
  const who = await ref.ask<{ threadId: number; pid: number; incarnation: string; path: string }>((replyTo) => ({ type: 'whoami', replyTo }));
  t.is(who.pid, agent.child.pid!, 'the actor runs in the node agent process');
  const floats = Float32Array.from({ length: 300_000 }, (_, i) => Math.sin(i));
  const expected = Buffer.from(floats.buffer).toString('base64');
  const back = await ref.ask<Float32Array>((replyTo) => ({ type: 'echo', payload: floats, replyTo: replyTo as ActorRef<unknown> }));
  t.true(back instanceof Float32Array);
  t.is(Buffer.from(back.buffer, back.byteOffset, back.byteLength).toString('base64'), expected);
  t.like(system.placementOf(ref), { kind: 'node', id: 'n1' });
  // a second actor on the same node, and a normal stop
  const other = await system.spawn('on-node-2', testActor('on-node-2', '', { placement: { node: 'n1' } }));
  t.deepEqual(await system.stop(other), { kind: 'normal' });
  t.is(await ref.ask<string>((replyTo) => ({ type: 'echo', payload: 'still here', replyTo: replyTo as ActorRef<unknown> })), 'still here');
});

test("a node that stops answering is declared dead by heartbeat and its actors' watchers are told", async (t) => {
  const { system, probe, probeRef, listener, port } = await leader(t, { heartbeatMs: 100, heartbeatTimeoutMs: 600 });
  const agent = startAgent(t, port, TOKEN, 'n2');
  await listener.waitForNode('n2');
  const ref = await system.spawn('remote', testActor('remote', '', { placement: { node: 'n2' } }));
  const watcher = await system.spawn('watcher', testActor('watcher', probeRef.path));
  watcher.tell({ type: 'watch', target: ref as ActorRef<unknown> });
  const watched = system.watch(ref);
  await new Promise((r) => setTimeout(r, 50));
  agent.child.kill('SIGSTOP'); // frozen: the socket stays open, only the heartbeats stop
  const reason = await watched;
  t.is(reason.kind, 'killed');
  t.regex(reason.kind === 'killed' ? reason.detail : '', /node n2 missed its heartbeats/);
  await probe.until((events) => events.some((e) => e.event === 'signal' && e.id === 'watcher' && e.reason === 'killed'));
  t.deepEqual(system.nodeNames(), []);
  await t.throwsAsync(system.spawn('again', testActor('again', '', { placement: { node: 'n2' } })), { message: /no node named "n2" has joined/ });
  agent.child.kill('SIGKILL');
});

test('a wrong or missing join token is refused', async (t) => {
  const { system, port } = await leader(t);
  const wrong = startAgent(t, port, 'not-the-token', 'intruder');
  t.is(await wrong.exited, 1);
  t.regex(wrong.output(), /refused this node: wrong join token/);
  const missing = startAgent(t, port, null, 'no-token');
  t.is(await missing.exited, 1);
  t.regex(missing.output(), /a join token is required/);
  t.deepEqual(system.nodeNames(), []);
});

async function rawConnection(port: number, bytes: Buffer): Promise<'closed'> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(bytes);
  await new Promise((resolve) => socket.once('close', resolve));
  return 'closed';
}

test('malformed and oversized frames close that connection; the leader keeps serving', async (t) => {
  const { system, listener, port } = await leader(t, { maxFrameBytes: 1 << 20 });
  const errors: string[] = [];
  const original = console.error;
  console.error = (line: string) => errors.push(line);
  t.teardown(() => (console.error = original));
  // unknown frame type
  t.is(await rawConnection(port, Buffer.concat([frameHeader(9, 3), Buffer.from('abc')])), 'closed');
  // a header announcing 2 GiB
  t.is(await rawConnection(port, frameHeader(FRAME_MESSAGE, 2 ** 31)), 'closed');
  // a well-framed message whose body is not msgpack
  const junk = Buffer.from([0, 0, 0, 0, 0xc1, 0xc1, 0xc1]);
  t.is(await rawConnection(port, Buffer.concat([frameHeader(FRAME_MESSAGE, junk.length), junk])), 'closed');
  console.error = original;
  t.true(errors.some((e) => /unknown frame type 9/.test(e)), errors.join('\n'));
  t.true(errors.some((e) => /exceeds the limit of 1048576 bytes/.test(e)), errors.join('\n'));
  t.true(errors.some((e) => /undecodable message|first message must be a hello/.test(e)), errors.join('\n'));
  // still serving: a real node joins afterwards
  startAgent(t, port, TOKEN, 'n3');
  await listener.waitForNode('n3');
  t.deepEqual(system.nodeNames(), ['n3']);
});

test('a node listener without a token is refused at start', async (t) => {
  await t.throwsAsync(NodeListener.listen(new ActorSystem(), { token: '' }), { message: /needs a join token/ });
});
