// RemoteCell: this system's proxy for an actor hosted by a child host (a
// worker thread, a child process, a node). It stays in the registry at the
// actor's path, forwards envelopes through the host's link, and keeps the
// death-watch list here, so watchers are told even when the host dies
// abruptly (the host then reports every actor it held as killed).
import type { StopReason } from './actor.js';
import type { Cell } from './cell.js';
import type { Envelope } from './envelope.js';
import type { ParentHost } from './hosts/parent-host.js';
import type { HostSystem } from './host-system.js';

export class RemoteCell implements Cell {
  readonly terminated: Promise<StopReason>;
  private resolveTerminated!: (reason: StopReason) => void;
  private readonly watchers = new Set<string>();
  private stopped = false;

  constructor(
    private readonly system: HostSystem,
    readonly path: string,
    readonly incarnation: string,
    readonly host: ParentHost,
  ) {
    this.terminated = new Promise((resolve) => (this.resolveTerminated = resolve));
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  deliver(envelope: Envelope): void {
    switch (envelope.k) {
      case 'watch':
        if (!this.stopped) this.watchers.add(envelope.watcher);
        return;
      case 'unwatch':
        this.watchers.delete(envelope.watcher);
        return;
      case 'stop':
        return this.requestStop();
      default:
        this.host.post(envelope);
    }
  }

  requestStop(): void {
    if (!this.stopped) this.host.control({ t: 'stop', path: this.path });
  }

  kill(detail: string): void {
    if (this.stopped) return;
    this.finish({ kind: 'killed', detail });
    this.host.killed(this);
  }

  finish(reason: StopReason): void {
    if (this.stopped) return;
    this.stopped = true;
    this.system.unregister(this.path, this);
    for (const watcher of this.watchers) {
      this.system.route({ k: 'terminated', to: watcher, target: this.path, incarnation: this.incarnation, reason });
    }
    this.watchers.clear();
    this.system.reportStopped(this.path, this.incarnation, reason);
    this.resolveTerminated(reason);
  }
}
