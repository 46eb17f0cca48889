// The leader's side of a joined node: a connection that hosts any number of
// actors. Losing the connection or its heartbeats reports every actor there
// as killed, so their watchers and supervisors hear of it. Everything the
// node sends passes the link policy first (link-policy.ts).
import type { Envelope } from '../envelope.js';
import type { ToParent } from '../host-protocol.js';
import type { HostSystem } from '../host-system.js';
import { ParentHost } from '../hosts/parent-host.js';
import type { StreamPort } from '../stream-port.js';
import { Heartbeat } from './heartbeat.js';
import { NodeLinkPolicy } from './link-policy.js';

/** How long a node starting an actor (loading its shard) may stay silent. */
const NODE_START_SILENCE_MS = 300_000;
/** How long a node is given to close its end after being told to leave. */
const LEAVE_GRACE_MS = 1000;

export class NodeHost extends ParentHost {
  readonly kind = 'node';
  readonly policy: NodeLinkPolicy;

  constructor(system: HostSystem, childSystemId: string, readonly id: string, readonly pid: number,
    private readonly port: StreamPort, heartbeatMs: number, heartbeatTimeoutMs: number) {
    super(system, childSystemId);
    this.policy = new NodeLinkPolicy(id, () => this.cells.keys());
    this.attach(port);
    port.on('message', (message: ToParent) => this.onMessage(message));
    port.on('close', (reason: string) => this.lost(`connection to node ${id} lost (${reason})`));
    // a node loading a model shard for a rank it starts is silent meanwhile
    new Heartbeat(port, heartbeatMs, heartbeatTimeoutMs, (silentMs) => {
      this.lost(`node ${id} missed its heartbeats for ${silentMs} ms`);
      port.close('heartbeat timeout');
    }, { busy: () => this.startsPending, busyTimeoutMs: NODE_START_SILENCE_MS });
  }

  /**
   * Lets the node go: it is told to leave (so its agent exits rather than
   * rejoining, as it would after a lost link), then the connection ends.
   */
  async terminate(): Promise<void> {
    if (this.port.isClosed) return;
    const closed = new Promise<void>((resolve) => this.port.once('close', () => resolve()));
    this.port.postMessage({ t: 'leave' });
    this.port.end();
    const timer = setTimeout(() => this.port.close('terminated by the leader'), LEAVE_GRACE_MS);
    await closed;
    clearTimeout(timer);
  }

  protected override onMessage(message: ToParent): void {
    const t = (message as { t?: unknown } | null)?.t;
    // a node's own actors announce their ends with 'unregister'; it can only remove what 'register' added, which is refused
    if (t === 'unregister') return;
    if (t === 'register') return this.policy.refuse(`a request to register ${JSON.stringify((message as { path?: unknown }).path)}`);
    if (t !== 'env' && t !== 'started' && t !== 'start-failed' && t !== 'stopped' && t !== 'ping') return this.policy.refuse(`an unknown control message ${JSON.stringify(t)}`);
    super.onMessage(message);
  }

  protected override routeEnvelope(envelope: Envelope): void {
    const why = this.policy.check(envelope);
    if (why) return this.policy.refuse(why);
    super.routeEnvelope(envelope);
  }
}
