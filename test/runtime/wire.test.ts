// Wire framing for sockets: frames survive any chunking; bad streams are errors.
import test from 'ava';
import { PassThrough } from 'node:stream';
import { StreamPort } from '../../runtime/stream-port.js';
import { FRAME_BINARY, FRAME_MESSAGE, frameHeader, WireProtocolError, WireReader } from '../../runtime/wire.js';

function wireBytes(message: unknown): Buffer {
  const chunks: Buffer[] = [];
  const stream = new PassThrough();
  stream.on('data', (d: Buffer) => chunks.push(d));
  new StreamPort(stream).postMessage(message);
  return Buffer.concat(chunks);
}

test('a message with binary attachments survives being cut into any chunks', (t) => {
  const floats = Float32Array.from({ length: 1000 }, (_, i) => i / 7);
  const bytes = wireBytes({ hello: 'world', floats, more: new Uint8Array([1, 2, 3]) });
  for (const size of [1, 3, 7, 64, 4096, bytes.length]) {
    const reader = new WireReader();
    const messages = [];
    for (let i = 0; i < bytes.length; i += size) messages.push(...reader.push(bytes.subarray(i, i + size)));
    t.is(messages.length, 1, `chunks of ${size}`);
    t.is(messages[0]!.attachments.length, 2, 'both typed arrays went as raw binary frames');
    t.is(messages[0]!.attachments[0]!.byteLength, 4000);
  }
});

test('bad streams are protocol errors', (t) => {
  t.throws(() => new WireReader().push(frameHeader(7, 0)), { instanceOf: WireProtocolError, message: /unknown frame type 7/ });
  t.throws(() => new WireReader(100).push(frameHeader(FRAME_MESSAGE, 101)), { message: /101 bytes exceeds the limit of 100/ });
  t.throws(() => new WireReader().push(Buffer.concat([frameHeader(FRAME_BINARY, 1), Buffer.from([0])])), { message: /binary frame arrived with no message/ });
  const wantsOne = Buffer.concat([frameHeader(FRAME_MESSAGE, 5), Buffer.from([1, 0, 0, 0, 0xc0])]);
  const next = Buffer.concat([frameHeader(FRAME_MESSAGE, 5), Buffer.from([0, 0, 0, 0, 0xc0])]);
  t.throws(() => new WireReader().push(Buffer.concat([wantsOne, next])), { message: /1 attachments were still due/ });
});
