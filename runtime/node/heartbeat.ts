// Heartbeats on a node connection: a ping every `intervalMs`; a peer silent
// (no frame of any kind) for `timeoutMs` is declared dead. Two exceptions,
// because loading a model shard blocks a node's thread for seconds:
//   - this thread itself was blocked (a tick came more than timeoutMs late):
//     it could not have heard anything, so the silence restarts now;
//   - `busy()` says the peer is starting actors (a spawn is pending there):
//     silence is tolerated up to busyTimeoutMs.
import type { StreamPort } from '../stream-port.js';

export interface HeartbeatOptions {
  busy?: () => boolean;
  busyTimeoutMs?: number;
}

export class Heartbeat {
  private lastHeard = Date.now();
  private lastTick = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(port: StreamPort, intervalMs: number, timeoutMs: number, onDead: (silentMs: number) => void, options: HeartbeatOptions = {}) {
    port.on('message', () => (this.lastHeard = Date.now()));
    this.timer = setInterval(() => {
      const now = Date.now();
      if (now - this.lastTick > timeoutMs) this.lastHeard = now;
      this.lastTick = now;
      const silent = now - this.lastHeard;
      const limit = options.busy?.() ? Math.max(timeoutMs, options.busyTimeoutMs ?? timeoutMs) : timeoutMs;
      if (silent > limit) {
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
