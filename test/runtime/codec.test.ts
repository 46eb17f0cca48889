// The codec: binary payloads go out of band, refs survive, the debug mode
// catches messages that could not cross a thread.
import test from 'ava';
import { ActorSystem, UnserializableMessageError, assertSerializable, decodeFrame, encodeFrame, roundTrip } from '../../runtime/index.js';
import { testActor } from './helpers.js';

test('typed arrays travel in the transfer list, not in the msgpack bytes', (t) => {
  const big = new Float32Array(1 << 18); // 1 MiB
  big[12345] = 3.5;
  const frame = encodeFrame({ type: 'step', weights: big, tokens: [1, 2, 3] });
  t.true(frame.bytes.byteLength < 200, `frame bytes: ${frame.bytes.byteLength}`);
  t.is(frame.transfer.length, 1);
  t.is(frame.transfer[0]!.byteLength, 1 << 20);
  const decoded = decodeFrame(frame) as { weights: Float32Array; tokens: number[] };
  t.true(decoded.weights instanceof Float32Array);
  t.is(decoded.weights[12345], 3.5);
  t.deepEqual(decoded.tokens, [1, 2, 3]);
});

test('two views on one buffer transfer it once; partial views are copied', (t) => {
  const buffer = new ArrayBuffer(64);
  const whole = new Uint8Array(buffer);
  const part = new Float32Array(buffer, 16, 4);
  whole[16] = 0;
  part[0] = 1.5;
  const frame = encodeFrame({ a: whole, b: new Uint8Array(buffer), c: part });
  t.is(frame.transfer.length, 2, 'the whole buffer once, plus a copy of the partial view');
  const decoded = decodeFrame(frame) as { a: Uint8Array; b: Uint8Array; c: Float32Array };
  t.is(decoded.a.buffer, decoded.b.buffer);
  t.is(decoded.c.length, 4);
  t.is(decoded.c[0], 1.5);
});

test('actor refs are rebuilt bound to the decoding system', async (t) => {
  const system = new ActorSystem();
  const ref = await system.spawn('x', testActor('x'));
  const decoded = decodeFrame(encodeFrame({ ref }), system) as { ref: typeof ref };
  t.is(decoded.ref.path, 'x');
  t.not(decoded.ref, ref);
  await t.notThrowsAsync(decoded.ref.send({ type: 'ignore' }));
  await system.shutdown();
});

test('assertSerializable names what cannot cross a thread', (t) => {
  t.throws(() => assertSerializable({ a: { f: () => 1 } }), { instanceOf: UnserializableMessageError, message: /message\.a\.f is a function/ });
  class Tensor { data = new Float32Array(2); }
  t.throws(() => assertSerializable({ t: new Tensor() }), { message: /message\.t is an instance of class Tensor/ });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  t.throws(() => assertSerializable(cyclic), { message: /reference cycle/ });
  t.throws(() => assertSerializable([Symbol('s')]), { message: /message\[0\] is a symbol/ });
  t.notThrows(() => assertSerializable({ m: new Map([[1, new Set([2])]]), d: new Date(), b: new Uint8Array(2), n: null, u: undefined }));
});

test('roundTrip copies a message through the codec', (t) => {
  const message = { list: [1, 'two', { three: new Float64Array([3]) }] };
  const copy = roundTrip(message);
  t.deepEqual(copy, message);
  t.not(copy, message);
});

test('debug mode: an unserializable message is refused where it is sent, in-thread too', async (t) => {
  const debug = new ActorSystem({ debugSerialize: true });
  const ref = await debug.spawn('x', testActor('x'));
  t.throws(() => ref.tell({ type: 'echo', payload: { callback: () => 1 }, replyTo: ref } as never), { instanceOf: UnserializableMessageError });
  const error = await t.throwsAsync(ref.ask((replyTo) => ({ type: 'echo', payload: new (class Handle {})(), replyTo })));
  t.true(error instanceof UnserializableMessageError);
  // what is serializable still arrives, as a copy
  const payload = { n: 1 };
  const back = await ref.ask<{ n: number }>((replyTo) => ({ type: 'echo', payload, replyTo }));
  t.deepEqual(back, payload);
  t.not(back, payload);
  await debug.shutdown();

  const plain = new ActorSystem({ debugSerialize: false });
  const fast = await plain.spawn('x', testActor('x'));
  const fn = { callback: () => 1 };
  t.is(await fast.ask((replyTo) => ({ type: 'echo', payload: fn, replyTo })), fn, 'without debug mode, by reference');
  await plain.shutdown();
});
