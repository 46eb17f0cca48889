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
import type { TensorPartMessage } from '../messages/rank.js';

/** The native link's side that takes peers' vectors (native/link-collective.ts). */
export interface LinkSink {
  put(generation: number, fromRank: number, part: Float32Array): string;
}

export class TensorLinkExchange {
  /** Messages dropped: another incarnation of the group, or a generation out of step. */
  dropped = 0;
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
    for (let q = 0; q < this.ranks; q++) {
      if (q !== this.me) this.send(q, { type: 'tensor-part', group: this.group, generation, from: this.me, part });
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
    const why = this.sink!.put(message.generation, message.from, message.part);
    if (why && this.refusal === undefined) this.refusal = why;
  }
}
