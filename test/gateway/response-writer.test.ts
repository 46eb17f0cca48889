// The ResponseWriter against a fake uWS HttpResponse that can refuse writes:
// onAborted registered at once, every write corked, backpressure queued until
// onWritable, the queue drained in order, the filler sent when only uWS holds
// data, slow clients disconnected, nothing touched after an abort.
import test from 'ava';
import { ResponseWriter } from '../../gateway/http/response-writer.js';
import type { HttpResponse } from '../../gateway/uws.js';

class FakeResponse {
  written: string[] = [];
  status = '';
  headers: [string, string][] = [];
  ended: string | null = null;
  closed = false;
  corkDepth = 0;
  uncorkedCalls = 0;
  /** Writes accepted before write() starts returning false (tryEnd accepts this many bytes). */
  capacity = Number.POSITIVE_INFINITY;
  onAbortedHandler: (() => void) | null = null;
  onWritableHandler: ((offset: number) => boolean) | null = null;
  offset = 0;

  private check(): void {
    if (this.corkDepth === 0) this.uncorkedCalls++;
  }

  onAborted(handler: () => void) {
    this.onAbortedHandler = handler;
    return this;
  }
  onWritable(handler: (offset: number) => boolean) {
    this.onWritableHandler = handler;
    return this;
  }
  cork(fn: () => void) {
    this.corkDepth++;
    try {
      fn();
    } finally {
      this.corkDepth--;
    }
    return this;
  }
  writeStatus(status: string) {
    this.check();
    this.status = status;
    return this;
  }
  writeHeader(key: string, value: string) {
    this.check();
    this.headers.push([key, value]);
    return this;
  }
  write(chunk: string | Uint8Array) {
    this.check();
    // rule 4: uWS gets UTF-8 bytes, never a JS string
    if (typeof chunk === 'string') throw new Error(`write() was given a string: ${JSON.stringify(chunk)}`);
    this.written.push(Buffer.from(chunk).toString());
    return this.written.length <= this.capacity;
  }
  end(body: string | Uint8Array = new Uint8Array()) {
    this.check();
    if (typeof body === 'string') throw new Error(`end() was given a string: ${JSON.stringify(body)}`);
    this.ended = Buffer.from(body).toString();
    return this;
  }
  tryEnd(data: Uint8Array, total: number): [boolean, boolean] {
    this.check();
    const take = Math.min(data.length, Math.max(0, this.capacity - this.offset));
    this.written.push(Buffer.from(data.subarray(0, take)).toString());
    this.offset += take;
    const done = this.offset === total;
    if (done) this.ended = this.written.join('');
    return [take === data.length, done];
  }
  close() {
    this.closed = true;
    this.onAbortedHandler?.();
    return this;
  }
}

const writer = (res: FakeResponse, maxQueuedBytes?: number) => new ResponseWriter(res as unknown as HttpResponse, maxQueuedBytes !== undefined ? { maxQueuedBytes } : {});

test('onAborted is registered by the constructor, and after an abort nothing is written', (t) => {
  const res = new FakeResponse();
  const w = writer(res);
  t.truthy(res.onAbortedHandler, 'registered before any await can happen');
  let gone = 0;
  w.onGone(() => gone++);
  res.onAbortedHandler!();
  t.false(w.open);
  t.is(gone, 1);
  w.json(200, { a: 1 });
  w.begin(200, {}, ':\n');
  w.write('x');
  w.end();
  t.deepEqual(res.written, []);
  t.is(res.ended, null);
  let late = 0;
  w.onGone(() => late++);
  t.is(late, 1, 'a handler added after the abort runs at once');
});

test('every call on the response happens inside cork', (t) => {
  const res = new FakeResponse();
  const w = writer(res);
  w.begin(200, { 'Content-Type': 'text/event-stream' }, ':\n');
  w.write('data: 1\n\n');
  w.end('data: [DONE]\n\n');
  t.is(res.uncorkedCalls, 0);
  const res2 = new FakeResponse();
  writer(res2).json(400, { error: 'x' });
  t.is(res2.uncorkedCalls, 0);
  t.is(res2.status, '400 Bad Request');
  t.is(res2.ended, '{"error":"x"}');
});

test('a streamed body under backpressure: chunks queue until onWritable, then go out in order, then the end', (t) => {
  const res = new FakeResponse();
  res.capacity = 1;
  const w = writer(res);
  w.begin(200, {}, ':\n');
  w.write('a');
  w.write('b'); // refused: queued
  w.write('c');
  w.end('END');
  t.deepEqual(res.written, ['a', 'b'], 'after the refused write, nothing more is handed to uWS');
  t.is(res.ended, null, 'the end waits for the queue');
  t.truthy(res.onWritableHandler);
  res.capacity = Number.POSITIVE_INFINITY;
  t.true(res.onWritableHandler!(0));
  t.deepEqual(res.written, ['a', 'b', 'c']);
  t.is(res.ended, 'END');
});

test('when only uWS holds data, onWritable writes the filler so it is flushed', (t) => {
  const res = new FakeResponse();
  res.capacity = 0;
  const w = writer(res);
  w.begin(200, {}, ':\n');
  w.write('data: x\n\n'); // refused: uWS buffers it
  t.false(res.onWritableHandler!(0), 'still refused: keep calling');
  res.capacity = Number.POSITIVE_INFINITY;
  t.true(res.onWritableHandler!(0));
  t.deepEqual(res.written, ['data: x\n\n', ':\n', ':\n']);
  w.write('data: y\n\n');
  t.is(res.written[res.written.length - 1], 'data: y\n\n', 'back to writing directly');
});

test('a client that lets too much pile up is disconnected and counts as gone', (t) => {
  const res = new FakeResponse();
  res.capacity = 0;
  const w = writer(res, 10);
  let gone = 0;
  w.onGone(() => gone++);
  w.begin(200, {}, ':\n');
  w.write('first');
  w.write('0123456789');
  t.false(res.closed);
  w.write('more');
  t.true(res.closed);
  t.is(gone, 1);
  t.false(w.open);
});

test('a whole body refused in part resumes from the offset uWS reports', (t) => {
  const res = new FakeResponse();
  res.capacity = 4;
  const w = writer(res);
  w.send(200, {}, 'abcdefghij');
  t.is(res.ended, null);
  res.capacity = Number.POSITIVE_INFINITY;
  t.true(res.onWritableHandler!(res.offset));
  t.is(res.ended, 'abcdefghij');
  t.false(w.open);
});
