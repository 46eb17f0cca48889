// Heartbeats on a node connection: a ping every `intervalMs`; a peer silent
// (no frame of any kind) for `timeoutMs` is declared dead.
import type { StreamPort } from '../stream-port.js';

export class Heartbeat {
  private lastHeard = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(port: StreamPort, intervalMs: number, timeoutMs: number, onDead: (silentMs: number) => void) {
    port.on('message', () => (this.lastHeard = Date.now()));
    this.timer = setInterval(() => {
      const silent = Date.now() - this.lastHeard;
      if (silent > timeoutMs) {
        this.stop();
        onDead(silent);
        return;
      }
      port.postMessage({ t: 'ping' });
    }, Math.max(10, Math.min(intervalMs, timeoutMs / 2)));
    this.timer.unref();
    port.on('close', () => this.stop());
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
