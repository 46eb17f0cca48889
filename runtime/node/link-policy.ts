// What a joined node may send to its leader. A node is an untrusted peer
// with narrow rights:
//   - user messages ('msg') and delivery failures ('fail') only; a node never
//     asks the leader to spawn, stop, watch, unwatch or inspect anything, and
//     never registers a path;
//   - to an ask reply path ($ask/...: an unguessable capability the node was
//     handed), to an actor it hosts, or to a peer of one: a sibling under the
//     same supervisor, below the top level (a rank group's ranks and its
//     tensor-group registry: that covers pipeline hand-offs and the
//     all-reduce vectors of a tensor group across nodes, rank to rank;
//     test/runtime/link-policy.test.ts);
//   - naming, as where refusals go (from / ask / ack), only such paths too.
// Everything else is refused, logged (rate-limited) and counted; the link
// stays up and serving continues.
import { ASK_PREFIX, type Envelope } from '../envelope.js';

export type Refusal = string;

function parentOf(path: string): string | undefined {
  const cut = path.lastIndexOf('/');
  return cut > 0 ? path.slice(0, cut) : undefined;
}

export class NodeLinkPolicy {
  refused = 0;

  constructor(private readonly node: string, private readonly hosted: () => Iterable<string>) {}

  /** Whether the node may name `path` as a destination. */
  mayAddress(path: unknown): boolean {
    if (typeof path !== 'string') return false;
    if (path.startsWith(ASK_PREFIX)) return true;
    const parent = parentOf(path);
    for (const own of this.hosted()) {
      if (own === path) return true;
      // siblings below the top level: the top level's siblings would be every root actor
      if (parent !== undefined && parentOf(own) === parent) return true;
    }
    return false;
  }

  /** Null when the envelope may pass, else why not. */
  check(envelope: Envelope): Refusal | null {
    const e = envelope as Partial<Extract<Envelope, { k: 'msg' }>> & { k?: unknown };
    if (e.k !== 'msg' && e.k !== 'fail') return `a "${String(e.k)}" envelope (a node may only send messages and delivery failures)`;
    if (!this.mayAddress(e.to)) return `a message to ${JSON.stringify(e.to)}, which is neither an actor this node hosts nor a peer of one`;
    for (const key of ['from', 'ask', 'ack'] as const) {
      if (e[key] !== undefined && !this.mayAddress(e[key])) return `a message naming ${JSON.stringify(e[key])} as its ${key} path`;
    }
    return null;
  }

  /** Logs the first refusals, then every thousandth, so a flood cannot flood the log. */
  refuse(what: string): void {
    this.refused++;
    if (this.refused <= 20 || this.refused % 1000 === 0) {
      console.error(`[troupe] node ${this.node}: refused ${what} (${this.refused} refused so far)`);
    }
  }
}
