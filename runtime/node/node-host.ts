// The leader's side of a joined node: a connection that hosts any number of
// actors. Losing the connection or its heartbeats reports every actor there
// as killed, so their watchers and supervisors hear of it.
import type { ToParent } from '../host-protocol.js';
import { ParentHost } from '../hosts/parent-host.js';
import type { StreamPort } from '../stream-port.js';
import type { ActorSystem } from '../system.js';
import { Heartbeat } from './heartbeat.js';

export class NodeHost extends ParentHost {
  readonly kind = 'node';

  constructor(system: ActorSystem, childSystemId: string, readonly id: string, readonly pid: number,
    private readonly port: StreamPort, heartbeatMs: number, heartbeatTimeoutMs: number) {
    super(system, childSystemId);
    this.attach(port);
    port.on('message', (message: ToParent) => this.onMessage(message));
    port.on('close', (reason: string) => this.lost(`connection to node ${id} lost (${reason})`));
    new Heartbeat(port, heartbeatMs, heartbeatTimeoutMs, (silentMs) => {
      this.lost(`node ${id} missed its heartbeats for ${silentMs} ms`);
      port.close('heartbeat timeout');
    });
  }

  async terminate(): Promise<void> {
    this.port.close('terminated by the leader');
  }
}
