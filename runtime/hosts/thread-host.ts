// A worker thread hosting one actor.
import { nanoid } from 'nanoid';
import { Worker } from 'node:worker_threads';
import type { ChildBoot, ToParent } from '../host-protocol.js';
import type { HostSystem } from '../host-system.js';
import { ParentHost } from './parent-host.js';

const WORKER_MAIN = new URL('../worker-main.js', import.meta.url);

export class ThreadHost extends ParentHost {
  readonly kind = 'thread';
  readonly worker: Worker;

  constructor(system: HostSystem) {
    super(system, nanoid(10));
    const boot: ChildBoot = { systemId: this.childSystemId, debugSerialize: system.debugSerialize };
    this.worker = new Worker(WORKER_MAIN, { workerData: boot });
    this.attach(this.worker);
    this.worker.on('message', (message: ToParent) => this.onMessage(message));
    this.worker.on('error', (error) => this.lost(`worker thread ${this.id} crashed: ${error.message}`));
    this.worker.on('exit', (code) => this.lost(`worker thread ${this.id} exited with code ${code}`));
  }

  get id(): number {
    return this.worker.threadId;
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }

  protected override afterStopped(): void {
    if (this.cells.size === 0) void this.worker.terminate();
  }
}
