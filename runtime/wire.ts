// Wire framing for byte streams (a child process's socket, a TCP connection to
// a node). Every wire frame is
//
//   u32 LE  body length (bytes after the type byte)
//   u8      type: 1 = message, 2 = binary attachment
//   body
//
// A message body is `u32 LE attachment count` followed by msgpack bytes (a
// codec frame); exactly that many binary frames follow it, one per buffer the
// codec put out of band, so large arrays are written as raw bytes and never
// re-encoded. A frame longer than the reader's limit, an unknown type, or an
// attachment out of place is a protocol error: the connection is closed.
export const FRAME_MESSAGE = 1;
export const FRAME_BINARY = 2;
const HEADER_BYTES = 5;
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;
/** Out-of-band buffers one message may announce (a codec frame holds one per typed array it carries). */
export const DEFAULT_MAX_ATTACHMENTS = 4096;

export interface WireLimits {
  maxFrameBytes: number;
  maxAttachments: number;
}

export class WireProtocolError extends Error {
  override name = 'WireProtocolError';
}

export function frameHeader(type: number, bodyLength: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32LE(bodyLength, 0);
  header.writeUInt8(type, 4);
  return header;
}

export interface WireMessage {
  bytes: Uint8Array;
  attachments: ArrayBuffer[];
}

/** Reassembles wire frames from stream chunks; push() throws WireProtocolError on a bad stream. */
export class WireReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private pending: { bytes: Uint8Array; attachments: ArrayBuffer[]; expected: number } | null = null;

  private limits: WireLimits;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES, maxAttachments = DEFAULT_MAX_ATTACHMENTS) {
    this.limits = { maxFrameBytes, maxAttachments };
  }

  /** Changes the limits for the frames that follow (e.g. a small hello before a peer is welcomed). */
  setLimits(limits: Partial<WireLimits>): void {
    this.limits = { ...this.limits, ...limits };
  }

  /** Feeds bytes; returns the complete messages they finish. */
  push(chunk: Buffer): WireMessage[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: WireMessage[] = [];
    for (;;) {
      if (this.buffered < HEADER_BYTES) break;
      const header = this.peek(HEADER_BYTES);
      const length = header.readUInt32LE(0);
      const type = header.readUInt8(4);
      if (type !== FRAME_MESSAGE && type !== FRAME_BINARY) throw new WireProtocolError(`unknown frame type ${type}`);
      if (length > this.limits.maxFrameBytes) {
        throw new WireProtocolError(`frame of ${length} bytes exceeds the limit of ${this.limits.maxFrameBytes} bytes`);
      }
      if (this.buffered < HEADER_BYTES + length) break;
      this.take(HEADER_BYTES);
      const body = this.take(length);
      const message = this.accept(type, body);
      if (message) out.push(message);
    }
    return out;
  }

  private accept(type: number, body: Buffer): WireMessage | null {
    if (type === FRAME_MESSAGE) {
      if (this.pending) throw new WireProtocolError(`a message frame arrived while ${this.pending.expected} attachments were still due`);
      if (body.length < 4) throw new WireProtocolError('a message frame shorter than its attachment count');
      const expected = body.readUInt32LE(0);
      if (expected > this.limits.maxAttachments) {
        throw new WireProtocolError(`a message announces ${expected} attachments, over the limit of ${this.limits.maxAttachments}`);
      }
      const bytes = new Uint8Array(body.subarray(4)); // own copy: the chunk may be reused
      if (expected === 0) return { bytes, attachments: [] };
      this.pending = { bytes, attachments: [], expected };
      return null;
    }
    if (!this.pending) throw new WireProtocolError('a binary frame arrived with no message before it');
    const copy = new ArrayBuffer(body.length);
    new Uint8Array(copy).set(body);
    this.pending.attachments.push(copy);
    if (this.pending.attachments.length < this.pending.expected) return null;
    const done = this.pending;
    this.pending = null;
    return { bytes: done.bytes, attachments: done.attachments };
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const joined = Buffer.concat(this.chunks);
    this.chunks = joined.length > n ? [joined.subarray(n)] : [];
    this.buffered -= n;
    return joined.subarray(0, n);
  }
}
