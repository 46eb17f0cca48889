// Node placement: a node agent (a real `troupe node --join` process) joins a
// leader on 127.0.0.1 over TLS authenticated by the join token, hosts actors,
// and is declared dead by heartbeat. Hostile peers: connections without the
// token, malformed and oversized frames, floods of connects; a node with the
// token that tries to reach past its rights; a fake leader that tries to make
// a node import a module. The leader keeps serving through all of them.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeFrame } from '../../runtime/codec.js';
import { ActorSystem, type ActorRef } from '../../runtime/index.js';
import { joinLeader } from '../../runtime/node/agent.js';
import { PROTOCOL_VERSION } from '../../runtime/node/handshake.js';
import { NodeListener } from '../../runtime/node/listener.js';
import { connectLink, createLinkServer, LINK_CIPHERS } from '../../runtime/node/tls-link.js';
import { StreamPort } from '../../runtime/stream-port.js';
import { frameHeader, FRAME_MESSAGE } from '../../runtime/wire.js';
import type { ProbeEvent } from './fixtures/actors.js';
import { testActor, withProbe } from './helpers.js';

const CLI = fileURLToPath(new URL('../../cli/troupe.js', import.meta.url));
const TOKEN = randomBytes(32).toString('hex');

function startAgent(t: ExecutionContext, port: number, token: string | null, name: string, extra: string[] = []) {
  const args = [CLI, 'node', '--join', `127.0.0.1:${port}`, '--name', name, '--rejoin-for', '20', ...extra];
  // the token goes through the environment, never the command line
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TROUPE_JOIN_TOKEN: token ?? '' } });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  // 'close': after the exit and after both pipes are drained ('exit' can come before the last output)
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  t.teardown(() => { child.kill('SIGKILL'); });
  return { child, exited, output: () => output };
}

async function leader(t: ExecutionContext, options: { heartbeatMs?: number; heartbeatTimeoutMs?: number; maxFrameBytes?: number } = {}) {
  const { system, probe, probeRef } = await withProbe();
  const listener = await NodeListener.listen(system, { token: TOKEN, port: 0, ...options });
  t.teardown(async () => { await system.shutdown(1000); await listener.close(); });
  return { system, probe, probeRef, listener, port: listener.address.port };
}

function captureErrors(t: ExecutionContext): string[] {
  const errors: string[] = [];
  const original = console.error;
  console.error = (line: string) => errors.push(String(line));
  t.teardown(() => (console.error = original));
  return errors;
}

/** A TCP relay that records every byte it forwards (both ways). */
async function recordingRelay(t: ExecutionContext, targetPort: number) {
  const seen: Buffer[] = [];
  const sockets: Socket[] = [];
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    sockets.push(client, upstream);
    client.on('data', (d) => { seen.push(Buffer.from(d)); upstream.write(d); });
    upstream.on('data', (d) => { seen.push(Buffer.from(d)); client.write(d); });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close(); });
  return { port: (server.address() as { port: number }).port, bytes: () => Buffer.concat(seen) };
}

test('the listener binds 127.0.0.1 by default and speaks TLS with the pre-shared key', async (t) => {
  const { listener, port } = await leader(t);
  t.is(listener.address.host, '127.0.0.1');
  const socket = connectLink('127.0.0.1', port, TOKEN, 'probe-client');
  await new Promise((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
  t.is(socket.getCipher().name, LINK_CIPHERS);
  t.is(socket.getProtocol(), 'TLSv1.2');
  socket.destroy();
});

test('a node joins over TLS, hosts an actor in its own process, round-trips binary payloads; the wire shows neither token nor payload', async (t) => {
  const { system, listener, port } = await leader(t);
  const relay = await recordingRelay(t, port);
  const agent = startAgent(t, relay.port, TOKEN, 'n1');
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
  const other = await system.spawn('on-node-2', testActor('on-node-2', '', { placement: { node: 'n1' } }));
  t.deepEqual(await system.stop(other), { kind: 'normal' });
  t.is(await ref.ask<string>((replyTo) => ({ type: 'echo', payload: 'a plaintext marker', replyTo: replyTo as ActorRef<unknown> })), 'a plaintext marker');
  const wire = relay.bytes();
  t.true(wire.length > floats.byteLength, 'the payload did cross the relay');
  for (const secret of [TOKEN, 'a plaintext marker', 'on-node', 'TestActor']) t.is(wire.indexOf(secret), -1, `"${secret}" is not on the wire in clear`);
  t.is(wire.indexOf(Buffer.from(floats.buffer, 0, 64)), -1, 'the payload is encrypted');
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

test('a wrong, weak or missing join token is refused', async (t) => {
  const { system, listener, port } = await leader(t);
  const wrong = startAgent(t, port, randomBytes(32).toString('hex'), 'intruder');
  t.is(await wrong.exited, 1);
  t.regex(wrong.output(), /TLS handshake .* failed: wrong join token\?/);
  t.true(listener.failedHandshakes >= 1);
  const weak = startAgent(t, port, 'password1234', 'weak');
  t.is(await weak.exited, 1);
  t.regex(weak.output(), /join token is too weak/);
  const missing = startAgent(t, port, null, 'no-token');
  t.is(await missing.exited, 1);
  t.regex(missing.output(), /a join token is required/);
  t.deepEqual(system.nodeNames(), []);
  await t.throwsAsync(NodeListener.listen(new ActorSystem(), { token: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' }), { message: /too weak/ });
  await t.throwsAsync(NodeListener.listen(new ActorSystem(), { token: '' }), { message: /needs a join token/ });
});

test('the token can come from a file (--join-token-file)', async (t) => {
  const { system, listener, port } = await leader(t);
  const { writeFileSync, rmSync } = await import('node:fs');
  const file = `/tmp/troupe-token-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
  t.teardown(() => rmSync(file, { force: true }));
  startAgent(t, port, null, 'from-file', ['--join-token-file', file]);
  await listener.waitForNode('from-file');
  t.deepEqual(system.nodeNames(), ['from-file'], 'the agent joined with the token read from the file');
});

async function rawConnection(port: number, bytes: Buffer): Promise<'closed'> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  socket.resume();
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(bytes);
  await new Promise((resolve) => socket.once('close', resolve));
  return 'closed';
}

/** An authenticated link (right token) that sends `bytes` as its first frames and waits for the leader to close it. */
async function authenticatedConnection(port: number, bytes: Buffer): Promise<'closed'> {
  const socket = connectLink('127.0.0.1', port, TOKEN, 'raw');
  socket.on('error', () => {});
  socket.resume(); // read (and drop) what the leader answers, so its close is seen
  const secure = await new Promise<boolean>((resolve) => { socket.once('secureConnect', () => resolve(true)); socket.once('close', () => resolve(false)); });
  if (!secure) throw new Error('the leader closed the connection before TLS was up');
  socket.write(bytes);
  await new Promise((resolve) => socket.once('close', resolve));
  return 'closed';
}

function messageFrame(attachments: number, body: Uint8Array): Buffer {
  const head = Buffer.alloc(9);
  head.writeUInt32LE(4 + body.length, 0);
  head.writeUInt8(FRAME_MESSAGE, 4);
  head.writeUInt32LE(attachments, 5);
  return Buffer.concat([head, body]);
}

test.serial('before and during the handshake: junk, huge hellos, absurd attachment counts and malformed msgpack close that link; the leader keeps serving', async (t) => {
  const { system, listener, port } = await leader(t);
  const errors = captureErrors(t);
  const before = process.memoryUsage().rss;
  // each case starts with no pending handshake and no back-off for 127.0.0.1
  const fresh = async () => {
    for (;;) {
      listener.gate.succeeded('127.0.0.1');
      if (listener.gate.tracked === 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  // without the token: plaintext junk never gets past TLS
  t.is(await rawConnection(port, Buffer.concat([frameHeader(9, 3), Buffer.from('abc')])), 'closed');
  await fresh();
  // with the token: a hello announced at 256 MiB
  t.is(await authenticatedConnection(port, frameHeader(FRAME_MESSAGE, 256 * 1024 * 1024)), 'closed');
  await fresh();
  // 2^32-1 announced attachments
  t.is(await authenticatedConnection(port, messageFrame(2 ** 32 - 1, encodeFrame({ t: 'hello' }).bytes)), 'closed');
  await fresh();
  // not msgpack; a structured-clone record; a record definition; nil
  for (const body of [Buffer.from([0xc1, 0xc1]), Buffer.from([0xd6, 0x69, 0, 0, 0, 1, 0x90]), Buffer.from([0xd4, 0x72, 0x40]), Buffer.from([0xc0])]) {
    t.is(await authenticatedConnection(port, messageFrame(0, body)), 'closed');
    await fresh();
  }
  t.true(errors.some((e) => /TLS handshake failed/.test(e)), errors.join('\n'));
  t.true(errors.some((e) => /exceeds the limit of 4096 bytes/.test(e)), errors.join('\n'));
  t.true(errors.some((e) => /announces 4294967295 attachments/.test(e)), errors.join('\n'));
  t.true(errors.some((e) => /undecodable message/.test(e)), errors.join('\n'));
  t.true(errors.some((e) => /first message must be a hello/.test(e)), errors.join('\n'));
  t.true(process.memoryUsage().rss - before < 128 * 1024 * 1024, 'no huge buffer was allocated for an announced size');
  startAgent(t, port, TOKEN, 'n3');
  await listener.waitForNode('n3');
  t.deepEqual(system.nodeNames(), ['n3']);
});

test.serial('a thousand connects: one pending handshake per address, back-off, bounded state; a real node still joins', async (t) => {
  const { system, listener, port } = await leader(t);
  captureErrors(t);
  const sockets: Socket[] = [];
  t.teardown(() => { for (const s of sockets) s.destroy(); });
  const closedEarly = await Promise.all(Array.from({ length: 1000 }, () => new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    socket.on('error', () => {});
    const timer = setTimeout(() => resolve(false), 2000);
    socket.once('close', () => { clearTimeout(timer); resolve(true); });
  })));
  t.true(closedEarly.filter(Boolean).length >= 990, `${closedEarly.filter(Boolean).length} of 1000 were closed at once`);
  t.true(listener.gate.refusedConnections >= 990);
  t.true(listener.gate.tracked <= 2);
  for (const s of sockets) s.destroy();
  startAgent(t, port, TOKEN, 'n4'); // retries through the back-off
  await listener.waitForNode('n4');
  t.deepEqual(system.nodeNames(), ['n4']);
});

test.serial('a node with the right token cannot reach past its rights: refused, logged, and serving continues', async (t) => {
  const { system, probe, port } = await leader(t);
  const errors = captureErrors(t);
  const evil = await joinLeader({ host: '127.0.0.1', port, token: TOKEN, name: 'evil' });
  t.teardown(() => evil.leave());
  const hosted = await system.spawn('grp/on-evil', testActor('on-evil', '', { placement: { node: 'evil' } }));
  const sibling = await system.spawn('grp/peer', testActor('peer', 'probe'));
  const nodeHost = (system as unknown as { nodes: Map<string, { policy: { refused: number } }> }).nodes.get('evil')!;
  // every route a hostile node might try, straight from its system
  const s = evil.system;
  s.route({ k: 'msg', to: 'probe', body: { event: 'got', id: 'forged', n: 1 } satisfies ProbeEvent }); // an actor it neither hosts nor peers
  s.route({ k: 'msg', to: 'troupe/extensions', body: { type: 'start-child', module: 'data:text/javascript,process.exit(9)' } });
  s.route({ k: 'stop', to: 'probe' });
  s.route({ k: 'watch', to: 'probe', watcher: `$ask/${s.id}/w` });
  s.route({ k: 'inspect', to: 'probe', replyTo: `$ask/${s.id}/i` });
  s.route({ k: 'msg', to: 'grp/peer', body: { type: 'tell', to: 'probe', message: 1 }, from: 'probe' }); // names a path it may not
  s.notifyParent({ t: 'register', path: 'probe-2' });
  s.notifyParent({ t: 'register', path: 'troupe' });
  await new Promise((r) => setTimeout(r, 300));
  t.is(nodeHost.policy.refused, 8, errors.join('\n'));
  t.true(errors.some((e) => /node evil: refused a "stop" envelope/.test(e)), errors.join('\n'));
  t.true(errors.some((e) => /node evil: refused a request to register "troupe"/.test(e)), errors.join('\n'));
  t.false(probe.events.some((e) => e.event === 'got' && e.id === 'forged'), 'the forged message never arrived');
  t.deepEqual(await system.inspect(system.refFor('probe')).then((st) => st.path), 'probe', 'the probe still runs');
  // what it may do still works: its own actor answers, and it may reach a sibling of it
  const who = await hosted.ask<{ threadId: number; pid: number; incarnation: string; path: string }>((replyTo) => ({ type: 'whoami', replyTo }));
  t.is(who.path, 'grp/on-evil');
  s.route({ k: 'msg', to: 'grp/peer', body: { type: 'count', n: 5 } });
  await probe.until((events) => events.some((e) => e.event === 'got' && e.id === 'peer' && e.n === 5));
  t.deepEqual(system.nodeNames(), ['evil'], 'the link stays up');
  void sibling;
});

test.serial('a malformed control message from a joined node closes its link, never the process', async (t) => {
  const { system, listener, port } = await leader(t);
  captureErrors(t);
  const evil = await joinLeader({ host: '127.0.0.1', port, token: TOKEN, name: 'garbage' });
  const link = (evil.system as unknown as { toParent: { port: StreamPort } }).toParent.port;
  link.postMessage({ t: 'env', frames: 5 });
  t.is(await evil.closed, 'connection closed');
  t.deepEqual(system.nodeNames(), []);
  startAgent(t, port, TOKEN, 'after');
  await listener.waitForNode('after');
  t.deepEqual(system.nodeNames(), ['after'], 'the leader still admits nodes after the malformed link closed');
});

test('a fake leader cannot make a node import anything', async (t) => {
  const marker = `/tmp/troupe-imported-${process.pid}-${randomBytes(4).toString('hex')}`;
  const replies: unknown[] = [];
  let sent = false;
  const server = createLinkServer(TOKEN, (socket) => {
    const port = new StreamPort(socket, { codec: 'peer' });
    port.on('message', (message: { t: string }) => {
      if (message.t === 'hello') {
        port.postMessage({ t: 'welcome', systemId: 'fake', heartbeatMs: 1000, heartbeatTimeoutMs: 60_000 });
        const code = `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(marker)}, 'x'); export class A {}`;
        const spec = { args: [], mailbox: {} };
        port.postMessage({ t: 'spawn', boot: { path: 'a', incarnation: 'i', spec: { ...spec, module: `data:text/javascript,${encodeURIComponent(code)}`, export: 'A' } } });
        port.postMessage({ t: 'spawn', boot: { path: 'b', incarnation: 'i', spec: { ...spec, actor: '../../../tmp/evil.js' } } });
        port.postMessage({ t: 'spawn', boot: { path: 'c', incarnation: 'i', spec: { ...spec, actor: 'rank', module: 'data:text/javascript,' } } });
        port.postMessage({ t: 'spawn', boot: { path: 'd', incarnation: 'i', spec: { ...spec, actor: 'toString' } } });
        sent = true;
      } else replies.push(message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const agent = startAgent(t, (server.address() as { port: number }).port, TOKEN, 'victim');
  const deadline = Date.now() + 30_000;
  while (replies.filter((r) => (r as { t: string }).t === 'start-failed').length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.true(sent);
  const failed = replies.filter((r): r is { t: 'start-failed'; path: string; error: { message: string } } => (r as { t: string }).t === 'start-failed');
  t.deepEqual(failed.map((f) => f.path).sort(), ['a', 'b', 'c', 'd']);
  t.regex(failed.find((f) => f.path === 'a')!.error.message, /never by module URL/);
  t.regex(failed.find((f) => f.path === 'b')!.error.message, /not an actor this node may run/);
  const { existsSync } = await import('node:fs');
  t.false(existsSync(marker), 'the module was never imported');
  t.is(agent.child.exitCode, null, 'the node still runs');
  void PROTOCOL_VERSION;
});

test('a fake leader without the token never gets a hello', async (t) => {
  let hellos = 0;
  const server = createLinkServer(randomBytes(32).toString('hex'), () => { hellos++; });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const agent = startAgent(t, (server.address() as { port: number }).port, TOKEN, 'victim2');
  t.is(await agent.exited, 1);
  t.regex(agent.output(), /wrong join token\?/);
  t.is(hellos, 0);
});
