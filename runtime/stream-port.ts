// StreamPort: a MessagePort look-alike over a byte stream (a socket), so a
// child process or a remote node talks to its parent exactly as a worker
// thread does. postMessage() encodes with the codec; the buffers it puts out
// of band go as raw binary frames (see wire.ts). SharedArrayBuffers cannot
// cross a process: sending one is an error at the sender.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { decodeFrame, encodeFrame, type CodecProfile } from './codec.js';
import { UnserializableMessageError } from './errors.js';
import { DEFAULT_MAX_ATTACHMENTS, DEFAULT_MAX_FRAME_BYTES, FRAME_BINARY, FRAME_MESSAGE, frameHeader, WireReader, type WireLimits } from './wire.js';

export interface StreamPortOptions {
  maxFrameBytes?: number;
  maxAttachments?: number;
  /** `peer` for a link to another node: plain data only, both ways (codec.ts). */
  codec?: CodecProfile;
  /** Used in log lines: what is at the other end. */
  peer?: string;
}

/**
 * Events: 'message' (decoded value), 'close' (once, with a reason string).
 * A protocol error (oversized or malformed frame, undecodable message) is
 * logged and closes the connection; it never throws into the process.
 */
export class StreamPort extends EventEmitter {
  private readonly reader: WireReader;
  private closed = false;
  /** While paused, decoded messages wait here (a handshake reply and what follows it can share one chunk). */
  private held: unknown[] | null = null;
  readonly peer: string;
  readonly codec: CodecProfile;

  constructor(private readonly stream: Duplex, options: StreamPortOptions = {}) {
    super();
    this.peer = options.peer ?? 'peer';
    this.codec = options.codec ?? 'trusted';
    this.reader = new WireReader(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, options.maxAttachments ?? DEFAULT_MAX_ATTACHMENTS);
    // Small frames must not wait for Nagle's algorithm (a 40 ms stall per round trip on TCP).
    (stream as Duplex & { setNoDelay?: (noDelay: boolean) => void }).setNoDelay?.(true);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (error) => this.close(`connection error: ${error.message}`));
    stream.on('close', () => this.close('connection closed'));
  }

  /** Limits for the frames still to come. */
  setLimits(limits: Partial<WireLimits>): void {
    this.reader.setLimits(limits);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  postMessage(message: unknown): void {
    if (this.closed) return;
    const frame = encodeFrame(message, this.codec);
    if (frame.shared.length > 0) {
      throw new UnserializableMessageError('a SharedArrayBuffer', 'not shareable with another process; use the native shared-memory collectives');
    }
    const head = Buffer.allocUnsafe(9);
    head.writeUInt32LE(4 + frame.bytes.byteLength, 0);
    head.writeUInt8(FRAME_MESSAGE, 4);
    head.writeUInt32LE(frame.transfer.length, 5);
    // corked: the frame and its attachments leave in one writev
    this.stream.cork();
    this.stream.write(head);
    this.stream.write(frame.bytes);
    for (const buffer of frame.transfer) {
      this.stream.write(frameHeader(FRAME_BINARY, buffer.byteLength));
      this.stream.write(new Uint8Array(buffer));
    }
    this.stream.uncork();
  }

  /** Holds back 'message' events until resume(): call it from a handler that must finish setting up first. */
  pause(): void {
    this.held ??= [];
  }

  resume(): void {
    const held = this.held ?? [];
    this.held = null;
    for (let i = 0; i < held.length && !this.closed; i++) {
      const pausedAgain = this.held as unknown[] | null; // a handler may have paused again
      if (pausedAgain) return void pausedAgain.push(...held.slice(i));
      if (!this.deliver(held[i])) return;
    }
  }

  /** A handler that throws on what a peer sent closes this link; the error never reaches the process. */
  private deliver(value: unknown): boolean {
    try {
      this.emit('message', value);
      return true;
    } catch (error) {
      console.error(`[troupe] closing the connection to ${this.peer}: a message it sent could not be handled (${(error as Error).message})`);
      this.close(`protocol error: ${(error as Error).message}`);
      return false;
    }
  }

  /** Ends the connection after what was written has been sent. */
  end(): void {
    if (!this.closed) this.stream.end();
  }

  close(reason = 'closed by this side'): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.destroy();
    this.emit('close', reason);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let messages;
    try {
      messages = this.reader.push(chunk);
    } catch (error) {
      console.error(`[troupe] closing the connection to ${this.peer}: ${(error as Error).message}`);
      return this.close(`protocol error: ${(error as Error).message}`);
    }
    for (const { bytes, attachments } of messages) {
      let value: unknown;
      try {
        value = decodeFrame({ bytes, transfer: attachments, shared: [] }, undefined, this.codec);
      } catch (error) {
        console.error(`[troupe] closing the connection to ${this.peer}: undecodable message (${(error as Error).message})`);
        return this.close(`protocol error: undecodable message`);
      }
      if (this.held) this.held.push(value);
      else if (!this.deliver(value)) return;
      if (this.closed) return;
    }
  }
}
