// The msgpackr codec for messages that cross a thread (and, later, a process).
//
// Frame layout: one msgpack document (the envelope with its body) plus two
// side lists that travel beside it in the same postMessage:
//   transfer  ArrayBuffers moved through the transfer list (zero copy)
//   shared    SharedArrayBuffers (and views on them), shared, never copied
// A typed array in a message is written as a 6-byte extension record
// [kind u8, list u8, index u32] pointing into one of those lists, so its
// elements are never re-encoded one by one.
//
// Ownership: a typed array that covers its whole ArrayBuffer is transferred,
// so after sending, the sender's array is detached (ownership moves with the
// message). A view on part of a buffer (e.g. a pooled Node Buffer) is copied
// once into a fresh ArrayBuffer, which is then transferred.
//
// Two profiles. `trusted` (threads and child processes of this install):
// records and msgpackr's extra types. `peer` (a link to another node, whose
// bytes are untrusted): plain data only, checked structurally before
// decoding (plain-msgpack.ts), no records, no structured-clone references, no
// Error / RegExp / Set construction, no SharedArrayBuffers; the sender checks
// its own output the same way, so a message that would be refused fails
// where it is sent.
import { Packr, addExtension } from 'msgpackr';
import { checkPlainMsgpack } from './plain-msgpack.js';
import { ActorRef, type RefResolver } from './ref.js';
import { UnserializableMessageError } from './errors.js';

const TypedArray = Object.getPrototypeOf(Uint8Array) as abstract new (...args: never[]) => ArrayBufferView;

type ViewConstructor = new (buffer: ArrayBufferLike, byteOffset?: number, length?: number) => ArrayBufferView;

// Index in this table = the kind byte on the wire. Buffer before Uint8Array: it is a subclass.
const VIEW_KINDS: readonly [string, ViewConstructor, number][] = [
  ['Buffer', Buffer as unknown as ViewConstructor, 1],
  ['Int8Array', Int8Array, 1],
  ['Uint8Array', Uint8Array, 1],
  ['Uint8ClampedArray', Uint8ClampedArray, 1],
  ['Int16Array', Int16Array, 2],
  ['Uint16Array', Uint16Array, 2],
  ['Int32Array', Int32Array, 4],
  ['Uint32Array', Uint32Array, 4],
  ['Float32Array', Float32Array, 4],
  ['Float64Array', Float64Array, 8],
  ['BigInt64Array', BigInt64Array, 8],
  ['BigUint64Array', BigUint64Array, 8],
  ['DataView', DataView as unknown as ViewConstructor, 1],
];
const LIST_TRANSFER = 0;
const LIST_SHARED = 1;
const LIST_INLINE = 2; // only when encoding outside encodeFrame (no side lists)

const EXT_VIEW = 40;
const EXT_ARRAY_BUFFER = 41;
const EXT_SHARED_BUFFER = 42;
const EXT_ACTOR_REF = 43;

export interface Frame {
  bytes: Uint8Array;
  transfer: ArrayBuffer[];
  shared: SharedArrayBuffer[];
}

interface Outgoing {
  transfer: ArrayBuffer[];
  transferIndex: Map<ArrayBuffer, number>;
  shared: SharedArrayBuffer[];
}
interface Incoming {
  transfer: ArrayBuffer[];
  shared: SharedArrayBuffer[];
  resolver: RefResolver | undefined;
}

// Encoding and decoding are synchronous, so the side lists of the frame being
// built (or read) can live in these two slots for its duration.
let outgoing: Outgoing | null = null;
let incoming: Incoming | null = null;

function viewKind(view: ArrayBufferView): number {
  for (let i = 0; i < VIEW_KINDS.length; i++) if (view instanceof VIEW_KINDS[i]![1]) return i;
  throw new UnserializableMessageError('a typed array', view.constructor.name);
}

/** msgpackr hands extension payloads over as plain Uint8Arrays: view them as Buffers. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function header(kind: number, list: number, index: number, extra = 0): Buffer {
  const out = Buffer.allocUnsafe(6 + extra);
  out.writeUInt8(kind, 0);
  out.writeUInt8(list, 1);
  out.writeUInt32LE(index, 2);
  return out;
}

function transferIndexOf(out: Outgoing, buffer: ArrayBuffer): number {
  let index = out.transferIndex.get(buffer);
  if (index === undefined) {
    index = out.transfer.length;
    out.transfer.push(buffer);
    out.transferIndex.set(buffer, index);
  }
  return index;
}

function packView(view: ArrayBufferView): Buffer {
  const kind = viewKind(view);
  if (view.buffer instanceof SharedArrayBuffer) {
    if (!outgoing) throw new UnserializableMessageError('a view on a SharedArrayBuffer', 'only shareable between threads');
    outgoing.shared.push(view.buffer);
    const out = header(kind, LIST_SHARED, outgoing.shared.length - 1, 8);
    out.writeUInt32LE(view.byteOffset, 6);
    out.writeUInt32LE(view.byteLength, 10);
    return out;
  }
  if (!outgoing) {
    const out = header(kind, LIST_INLINE, 0, view.byteLength);
    Buffer.from(view.buffer, view.byteOffset, view.byteLength).copy(out, 6);
    return out;
  }
  const buffer = view.buffer as ArrayBuffer;
  const whole = view.byteOffset === 0 && view.byteLength === buffer.byteLength;
  // A partial view is copied once so the rest of its buffer stays with the sender.
  const moved = whole ? buffer : buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
  return header(kind, LIST_TRANSFER, transferIndexOf(outgoing, moved));
}

function unpackView(raw: Uint8Array): ArrayBufferView {
  const data = asBuffer(raw);
  const entry = VIEW_KINDS[data.readUInt8(0)];
  if (!entry) throw new RangeError(`corrupt frame: unknown typed array kind ${data.readUInt8(0)}`);
  const [, Ctor, bytesPerElement] = entry;
  const list = data.readUInt8(1);
  let buffer: ArrayBufferLike;
  let offset = 0;
  let byteLength: number;
  if (list === LIST_INLINE) {
    buffer = new Uint8Array(data.subarray(6)).buffer;
    byteLength = buffer.byteLength;
  } else {
    if (!incoming) throw new RangeError('corrupt frame: out-of-band typed array outside a frame');
    const index = data.readUInt32LE(2);
    if (list === LIST_SHARED) {
      buffer = incoming.shared[index]!;
      offset = data.readUInt32LE(6);
      byteLength = data.readUInt32LE(10);
    } else {
      buffer = incoming.transfer[index]!;
      byteLength = buffer?.byteLength ?? 0;
    }
    if (!buffer) throw new RangeError(`corrupt frame: missing out-of-band buffer ${index}`);
  }
  if (Ctor === (Buffer as unknown)) return Buffer.from(buffer, offset, byteLength);
  return new Ctor(buffer, offset, Ctor === (DataView as unknown) ? byteLength : byteLength / bytesPerElement);
}

addExtension({ Class: TypedArray as never, type: EXT_VIEW, pack: packView, unpack: unpackView });
addExtension({ Class: DataView, type: EXT_VIEW, pack: packView, unpack: unpackView });
addExtension({
  Class: ArrayBuffer,
  type: EXT_ARRAY_BUFFER,
  pack(buffer: ArrayBuffer) {
    if (!outgoing) return Buffer.concat([Buffer.from([LIST_INLINE]), Buffer.from(buffer)]);
    const out = Buffer.allocUnsafe(5);
    out.writeUInt8(LIST_TRANSFER, 0);
    out.writeUInt32LE(transferIndexOf(outgoing, buffer), 1);
    return out;
  },
  unpack(raw: Uint8Array) {
    const data = asBuffer(raw);
    if (data.readUInt8(0) === LIST_INLINE) return new Uint8Array(data.subarray(1)).buffer;
    const buffer = incoming?.transfer[data.readUInt32LE(1)];
    if (!buffer) throw new RangeError('corrupt frame: missing out-of-band ArrayBuffer');
    return buffer;
  },
});
addExtension({
  Class: SharedArrayBuffer,
  type: EXT_SHARED_BUFFER,
  pack(buffer: SharedArrayBuffer) {
    if (!outgoing) throw new UnserializableMessageError('a SharedArrayBuffer', 'only shareable between threads');
    outgoing.shared.push(buffer);
    const out = Buffer.allocUnsafe(4);
    out.writeUInt32LE(outgoing.shared.length - 1, 0);
    return out;
  },
  unpack(raw: Uint8Array) {
    const buffer = incoming?.shared[asBuffer(raw).readUInt32LE(0)];
    if (!buffer) throw new RangeError('corrupt frame: missing SharedArrayBuffer');
    return buffer;
  },
});
addExtension({
  Class: ActorRef,
  type: EXT_ACTOR_REF,
  pack: (ref: ActorRef<unknown>) => Buffer.from(ref.path, 'utf8'),
  unpack: (raw: Uint8Array) => {
    const path = asBuffer(raw).toString('utf8');
    const resolver = incoming?.resolver;
    return resolver ? resolver.refFor(path) : ActorRef.unbound(path);
  },
});

const packr = new Packr({ useRecords: true, mapsAsObjects: false, moreTypes: true });
const peerPackr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, structuredClone: false });

export type CodecProfile = 'trusted' | 'peer';

/** Extension types a peer may send: undefined, our views, ArrayBuffers and actor refs, dates. */
const PEER_EXTENSIONS: ReadonlySet<number> = new Set([0, EXT_VIEW, EXT_ARRAY_BUFFER, EXT_ACTOR_REF, -1]);

/** Encodes a value into a frame whose binary payloads travel out of band. */
export function encodeFrame(value: unknown, profile: CodecProfile = 'trusted'): Frame {
  const out: Outgoing = { transfer: [], transferIndex: new Map(), shared: [] };
  outgoing = out;
  try {
    const bytes = (profile === 'peer' ? peerPackr : packr).pack(value);
    if (profile === 'peer') {
      if (out.shared.length > 0) throw new UnserializableMessageError('a SharedArrayBuffer', 'not shareable with another node');
      try {
        checkPlainMsgpack(bytes, PEER_EXTENSIONS);
      } catch (error) {
        throw new UnserializableMessageError('a message for another node', `not plain data (${(error as Error).message})`);
      }
    }
    // pack() returns a view on msgpackr's reusable buffer: copy it out.
    return { bytes: new Uint8Array(bytes), transfer: out.transfer, shared: out.shared };
  } finally {
    outgoing = null;
  }
}

/** Decodes a frame; with the `peer` profile, bytes that are not plain data throw before msgpackr reads them. */
export function decodeFrame(frame: Frame, resolver?: RefResolver, profile: CodecProfile = 'trusted'): unknown {
  if (profile === 'peer') {
    if (frame.shared.length > 0) throw new RangeError('a peer frame cannot carry SharedArrayBuffers');
    checkPlainMsgpack(frame.bytes, PEER_EXTENSIONS);
  }
  incoming = { transfer: frame.transfer, shared: frame.shared, resolver };
  try {
    return (profile === 'peer' ? peerPackr : packr).unpack(frame.bytes);
  } finally {
    incoming = null;
  }
}

/**
 * Copies a value through the codec without moving its buffers (they are
 * copied in band): the debug mode for messages that stay in one thread.
 */
export function roundTrip<T>(value: T, resolver?: RefResolver): T {
  assertSerializable(value);
  incoming = { transfer: [], shared: [], resolver };
  try {
    return packr.unpack(packr.pack(value)) as T;
  } finally {
    incoming = null;
  }
}

const PLAIN_CLASSES: Function[] = [Array, Map, Set, Date, ArrayBuffer, SharedArrayBuffer, DataView, ActorRef, Error, RegExp];

/**
 * Throws UnserializableMessageError for anything that would not survive the
 * codec unchanged: functions, symbols, promises, class instances (their
 * prototype would be lost), cycles.
 */
export function assertSerializable(value: unknown, where = 'message', seen = new Set<object>()): void {
  const type = typeof value;
  if (type === 'function') throw new UnserializableMessageError(where, 'a function');
  if (type === 'symbol') throw new UnserializableMessageError(where, 'a symbol');
  if (value === null || type !== 'object') return;
  const object = value as object;
  if (ArrayBuffer.isView(object)) return;
  if (seen.has(object)) throw new UnserializableMessageError(where, 'a reference cycle');
  const proto = Object.getPrototypeOf(object);
  const plain = proto === Object.prototype || proto === null;
  if (!plain && !PLAIN_CLASSES.some((Class) => object instanceof Class) && !(object instanceof TypedArray)) {
    throw new UnserializableMessageError(where, `an instance of class ${object.constructor?.name ?? '(anonymous)'}`);
  }
  seen.add(object);
  if (Array.isArray(object)) {
    object.forEach((item, i) => assertSerializable(item, `${where}[${i}]`, seen));
  } else if (object instanceof Map) {
    for (const [key, item] of object) {
      assertSerializable(key, `${where} key`, seen);
      assertSerializable(item, `${where}.get(${String(key)})`, seen);
    }
  } else if (object instanceof Set) {
    for (const item of object) assertSerializable(item, `${where} item`, seen);
  } else if (plain) {
    for (const key of Object.keys(object)) assertSerializable((object as Record<string, unknown>)[key], `${where}.${key}`, seen);
  }
  seen.delete(object);
}
