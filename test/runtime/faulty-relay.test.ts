// The faulty-link relay the node tests use: it forwards bytes intact and in
// order (with or without a delay), a 'reset' cut resets both ends and every
// new connection until restore(), a 'silent' cut passes nothing, not even a
// close.
import test from 'ava';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { FaultyRelay } from './faulty-relay.js';

/** An echo server on 127.0.0.1 that remembers its sockets. */
async function echoServer(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

async function setup(t: import('ava').ExecutionContext, delayMs = 0) {
  const echo = await echoServer();
  const relay = await FaultyRelay.start({ target: { host: '127.0.0.1', port: echo.port }, delayMs });
  t.teardown(async () => {
    await relay.close();
    for (const s of echo.sockets) s.destroy();
    echo.server.close();
  });
  return { echo, relay };
}

function client(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends `data` in pieces and collects as many bytes back. */
async function roundTrip(socket: Socket, data: Buffer, pieces: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let length = 0;
  const done = new Promise<void>((resolve) => socket.on('data', (chunk: Buffer) => {
    got.push(chunk);
    length += chunk.length;
    if (length >= data.length) resolve();
  }));
  const step = Math.ceil(data.length / pieces);
  for (let i = 0; i < data.length; i += step) socket.write(data.subarray(i, i + step));
  await done;
  return Buffer.concat(got);
}

const payload = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff));

for (const delayMs of [0, 3]) {
  test(`bytes pass intact and in order (delay ${delayMs} ms)`, async (t) => {
    const { relay } = await setup(t, delayMs);
    const socket = await client(relay.port);
    const data = payload(1 << 20);
    t.deepEqual(await roundTrip(socket, data, 64), data);
    t.is(relay.bytesForwarded, 2 * data.length, 'each byte went there and back');
    if (delayMs > 0) t.true(relay.delayedChunks > 0 && relay.meanDelayMs >= delayMs, 'no chunk left before its delay');
    socket.destroy();
  });
}

test('a clean end arrives after the bytes sent before it, however long they wait', async (t) => {
  const server = createServer((socket) => socket.end('last words'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const relay = await FaultyRelay.start({ target: { host: '127.0.0.1', port: (server.address() as AddressInfo).port }, delayMs: 20 });
  t.teardown(async () => { await relay.close(); server.close(); });
  const socket = await client(relay.port);
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString()));
  await once(socket, 'end');
  t.is(got, 'last words');
  socket.destroy();
});

test('a reset cut resets both ends and new connections until restore()', async (t) => {
  const { echo, relay } = await setup(t);
  const socket = await client(relay.port);
  t.deepEqual(await roundTrip(socket, payload(1000), 1), payload(1000));
  const clientError = new Promise<string>((resolve) => socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')));
  const serverClosed = new Promise<void>((resolve) => echo.sockets[0]!.once('close', () => resolve()));
  relay.cut('reset');
  t.is(await clientError, 'ECONNRESET');
  await serverClosed;
  const refused = connect({ host: '127.0.0.1', port: relay.port });
  const refusal = await new Promise<string>((resolve) => {
    refused.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? ''));
    refused.once('close', () => resolve('closed'));
  });
  t.true(refusal === 'ECONNRESET' || refusal === 'closed', refusal);
  relay.restore();
  const again = await client(relay.port);
  t.deepEqual(await roundTrip(again, payload(5000), 3), payload(5000));
  again.destroy();
});

test('a close cut ends both ends with a FIN, and new connections until restore()', async (t) => {
  const { echo, relay } = await setup(t);
  const socket = await client(relay.port);
  t.deepEqual(await roundTrip(socket, payload(1000), 1), payload(1000));
  let clientError: string | null = null;
  socket.on('error', (e: NodeJS.ErrnoException) => (clientError = e.code ?? 'error'));
  const clientEnded = once(socket, 'end');
  const serverEnded = once(echo.sockets[0]!, 'end');
  relay.cut('close');
  await clientEnded;
  await serverEnded;
  t.is(clientError, null, 'a clean end, no reset');
  const refused = connect({ host: '127.0.0.1', port: relay.port });
  refused.on('error', () => {});
  await once(refused, 'end');
  refused.destroy();
  relay.restore();
  const again = await client(relay.port);
  t.deepEqual(await roundTrip(again, payload(5000), 3), payload(5000));
  again.destroy();
});

test('a silent cut passes no byte and no close; restore() resets what lived through it', async (t) => {
  const { echo, relay } = await setup(t);
  const socket = await client(relay.port);
  t.deepEqual(await roundTrip(socket, payload(100), 1), payload(100));
  relay.cut('silent');
  let heard = 0;
  socket.on('data', (chunk: Buffer) => (heard += chunk.length));
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.write(payload(100));
  echo.sockets[0]!.write('from the server');
  echo.sockets[0]!.end();
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(heard, 0, 'nothing reached the client');
  t.false(closed, 'the server\'s close was not passed on');
  const before = relay.bytesForwarded;
  const error = new Promise<string>((resolve) => socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')));
  relay.restore();
  t.is(await error, 'ECONNRESET');
  t.is(relay.bytesForwarded, before);
});
