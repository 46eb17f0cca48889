// The JS half of a tensor group whose ranks sit on different nodes
// (native/src/collectives/link_group.h has the native half). Policy only: it
// is handed the native link and a `send`, and tests drive it without any
// transport.
//
//   native step, all-reduce g:  onPart(g, mine)  -> send (g, me, mine) to every peer;
//                                                   put the peers' vectors of g held early
//   a peer's message (g, q, v): g == current     -> link.put(g, q, v)
//                               g == current + 1 -> hold it (a peer runs at most one
//                                                   generation ahead: it needs mine of g)
//                               else, or another group incarnation -> dropped, counted
//
// Messages travel rank to rank (the peers are siblings in the rank group, which
// the node link policy lets a node address); every rank folds every vector
// natively in rank order, so each gets the single rank's bits.
//
// On the wire a vector drops its -0.0 entries when that saves a quarter or
// more (packIdentity): the vocabulary-parallel sums (embedding rows, logits)
// fill everything outside the rank's own rows with -0.0 (model_parallel.h), so a
// rank sends its slice only. The receiver restores the same bits exactly.
import type { TensorPartMessage } from '../messages/rank.js';

/** The native link's side that takes peers' vectors (native/link-collective.ts). */
export interface LinkSink {
  put(generation: number, fromRank: number, part: Float32Array): string;
}

const NEG_ZERO = 0x80000000;

/** v without its -0.0 entries: [start, end) runs of the rest and their values; undefined when that saves less than a quarter. */
export function packIdentity(v: Float32Array): { runs: Uint32Array; values: Float32Array } | undefined {
  const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const runs: number[] = [];
  let kept = 0;
  for (let i = 0; i < bits.length;) {
    while (i < bits.length && bits[i] === NEG_ZERO) i++;
    if (i === bits.length) break;
    const start = i;
    while (i < bits.length && bits[i] !== NEG_ZERO) i++;
    runs.push(start, i);
    kept += i - start;
    if (kept + runs.length > v.length * 0.75) return undefined;
  }
  const values = new Float32Array(kept);
  for (let r = 0, o = 0; r < runs.length; o += runs[r + 1]! - runs[r]!, r += 2) values.set(v.subarray(runs[r], runs[r + 1]), o);
  return { runs: Uint32Array.from(runs), values };
}

/** The vector packIdentity packed, bit for bit; undefined when the runs do not describe one of `length` elements. */
export function unpackIdentity(length: number, runs: Uint32Array, values: Float32Array): Float32Array | undefined {
  if (!Number.isSafeInteger(length) || length < 0 || runs.length % 2 !== 0) return undefined;
  const out = new Float32Array(length).fill(-0);
  let o = 0, last = 0;
  for (let r = 0; r < runs.length; r += 2) {
    const start = runs[r]!, end = runs[r + 1]!;
    if (start < last || end <= start || end > length || o + end - start > values.length) return undefined;
    out.set(values.subarray(o, o + end - start), start);
    o += end - start;
    last = end;
  }
  return o === values.length ? out : undefined;
}

export class TensorLinkExchange {
  /** Messages dropped: another incarnation of the group, or a generation out of step. */
  dropped = 0;
  /** Bytes of vectors put on the wire (after packIdentity), over all peers. */
  wireBytesSent = 0;
  /** Why the native link refused a vector, the first time it did. */
  refusal: string | undefined;
  private current = 0;
  private readonly early = new Map<number, TensorPartMessage>();

  constructor(
    private readonly group: string,
    private readonly ranks: number,
    private readonly me: number,
    private readonly send: (peer: number, message: TensorPartMessage) => void,
  ) {}

  private sink: LinkSink | undefined;

  /** Set once the native link exists (vectors that arrive before wait until then). */
  attach(sink: LinkSink): void {
    this.sink = sink;
  }

  /** The native step's own vector of generation g (link-collective.ts onPart). */
  outgoing(generation: number, part: Float32Array): void {
    this.current = generation;
    const packed = packIdentity(part);
    const message: TensorPartMessage = packed
      ? { type: 'tensor-part', group: this.group, generation, from: this.me, part: packed.values, length: part.length, runs: packed.runs }
      : { type: 'tensor-part', group: this.group, generation, from: this.me, part };
    const bytes = message.part.byteLength + (message.runs?.byteLength ?? 0);
    const peers = Array.from({ length: this.ranks }, (_, q) => q).filter((q) => q !== this.me);
    for (const [i, q] of peers.entries()) {
      // a message to a thread transfers its arrays (runtime/codec.ts): every peer but the last gets copies
      const last = i === peers.length - 1;
      this.send(q, last ? message : { ...message, part: message.part.slice(), ...(message.runs ? { runs: message.runs.slice() } : {}) });
      this.wireBytesSent += bytes;
    }
    const held = [...this.early.values()].filter((m) => m.generation === generation);
    this.early.clear();
    for (const m of held) this.put(m);
  }

  /** A peer's vector. */
  incoming(message: TensorPartMessage): void {
    if (message.group !== this.group || message.from === this.me || !(message.from >= 0 && message.from < this.ranks)) {
      this.dropped++;
      return;
    }
    if (message.generation === this.current && this.current > 0) return this.put(message);
    if (message.generation === this.current + 1 && !this.early.has(message.from)) {
      this.early.set(message.from, message);
      return;
    }
    this.dropped++;
  }

  private put(message: TensorPartMessage): void {
    const part = message.runs ? unpackIdentity(message.length ?? -1, message.runs, message.part) : message.part;
    // a packing that does not add up fails the step (a vector of the wrong length), as a wrong length would
    const why = this.sink!.put(message.generation, message.from, part ?? new Float32Array(0));
    if (why && this.refusal === undefined) this.refusal = why;
  }
}
