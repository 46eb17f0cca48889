// A child process hosting one actor. The link is a socket pair on the child's
// file descriptor 3, framed by StreamPort (msgpack messages, raw binary
// attachments). A native crash or SIGKILL ends only that process; its
// supervisor sees the actor killed and can restart it.
import { nanoid } from 'nanoid';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ChildBoot, ToParent } from '../host-protocol.js';
import { StreamPort } from '../stream-port.js';
import type { HostSystem } from '../host-system.js';
import { ParentHost } from './parent-host.js';

const PROCESS_MAIN = fileURLToPath(new URL('../process-main.js', import.meta.url));
/** After its actor stopped, a child gets this long to exit by itself before SIGKILL. */
const EXIT_GRACE_MS = 2000;

export class ProcessHost extends ParentHost {
  readonly kind = 'process';
  readonly child: ChildProcess;
  private readonly port: StreamPort;

  constructor(system: HostSystem) {
    super(system, nanoid(10));
    const boot: ChildBoot = { systemId: this.childSystemId, debugSerialize: system.debugSerialize };
    this.child = spawn(process.execPath, [PROCESS_MAIN], {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
      env: { ...process.env, TROUPE_CHILD_BOOT: JSON.stringify(boot) },
    });
    this.port = new StreamPort(this.child.stdio[3] as Duplex, { peer: `child process ${this.child.pid}` });
    this.attach(this.port);
    this.port.on('message', (message: ToParent) => this.onMessage(message));
    this.child.on('exit', (code, signal) => this.lost(`process ${this.id} exited (${signal ? `signal ${signal}` : `code ${code}`})`));
    this.child.on('error', (error) => this.lost(`process could not be started: ${error.message}`));
  }

  get id(): number {
    return this.child.pid ?? -1;
  }

  terminate(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }

  protected override afterStopped(): void {
    if (this.cells.size > 0) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_GRACE_MS);
    timer.unref();
    this.child.once('exit', () => clearTimeout(timer));
  }
}
