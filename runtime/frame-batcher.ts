// Coalesces the envelopes one thread posts to another within a tick into a
// single postMessage. Each envelope is encoded at once (so a message that
// cannot be encoded fails where it is sent); only the posting is deferred, to
// a microtask. A control message flushes the batch first, so nothing is
// reordered.
import { encodeFrame, type CodecProfile, type Frame } from './codec.js';
import type { Envelope } from './envelope.js';
import { UnserializableMessageError } from './errors.js';

export interface FramePort {
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void;
}

/** A batch posts at this many envelopes (a long transfer list costs more than it saves). */
const MAX_BATCH = 32;

export class FrameBatcher {
  private frames: Frame[] = [];
  private transfer: ArrayBuffer[] = [];

  /** `crossesProcess`: the port leaves this process, so SharedArrayBuffers cannot go (refused at push). */
  constructor(private readonly port: FramePort, private readonly crossesProcess = false, private readonly profile: CodecProfile = 'trusted') {}

  push(envelope: Envelope): void {
    const frame = encodeFrame(envelope, this.profile);
    if (this.crossesProcess && frame.shared.length > 0) {
      throw new UnserializableMessageError('a SharedArrayBuffer', 'not shareable with another process; use the native shared-memory collectives');
    }
    this.frames.push(frame);
    this.transfer.push(frame.bytes.buffer as ArrayBuffer, ...frame.transfer);
    if (this.frames.length >= MAX_BATCH) this.flush();
    else if (this.frames.length === 1) queueMicrotask(() => this.flush());
  }

  control(message: unknown): void {
    this.flush();
    this.port.postMessage(message);
  }

  flush(): void {
    if (this.frames.length === 0) return;
    const frames = this.frames;
    const transfer = this.transfer;
    this.frames = [];
    this.transfer = [];
    this.port.postMessage({ t: 'env', frames }, transfer);
  }
}
