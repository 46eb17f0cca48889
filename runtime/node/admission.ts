// Limits on connections that have not yet authenticated, per remote address:
// one pending handshake at a time, and after a failure (a TLS handshake that
// did not prove the key, a refused hello, a timeout) a back-off that doubles
// up to `maxBackoffMs` before that address may try again. A success clears
// it. The table is capped, so a flood from many addresses stays bounded.
export interface AdmissionOptions {
  maxPendingPerAddress: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
  maxTracked: number;
}

export const DEFAULT_ADMISSION: AdmissionOptions = { maxPendingPerAddress: 1, baseBackoffMs: 50, maxBackoffMs: 5000, maxTracked: 4096 };

export class AdmissionGate {
  private readonly pending = new Map<string, number>();
  private readonly penalties = new Map<string, { failures: number; until: number }>();
  refusedConnections = 0;

  constructor(private readonly options: AdmissionOptions = DEFAULT_ADMISSION, private readonly now = () => Date.now()) {}

  /** Null when a new connection from `address` may start its handshake (counted as pending), else why not. */
  admit(address: string): string | null {
    const penalty = this.penalties.get(address);
    if (penalty && penalty.until > this.now()) return this.refuse(`backing off after ${penalty.failures} failed attempt(s)`);
    const pending = this.pending.get(address) ?? 0;
    if (pending >= this.options.maxPendingPerAddress) return this.refuse('a handshake from this address is already pending');
    if (this.pending.size >= this.options.maxTracked && pending === 0) return this.refuse('too many addresses handshaking');
    this.pending.set(address, pending + 1);
    return null;
  }

  /** The pending handshake from `address` ended (either way). */
  settle(address: string): void {
    const pending = (this.pending.get(address) ?? 1) - 1;
    if (pending <= 0) this.pending.delete(address);
    else this.pending.set(address, pending);
  }

  failed(address: string): void {
    const failures = (this.penalties.get(address)?.failures ?? 0) + 1;
    const wait = Math.min(this.options.maxBackoffMs, this.options.baseBackoffMs * 2 ** Math.min(failures - 1, 20));
    this.penalties.delete(address); // re-insert: the map's order is oldest first
    this.penalties.set(address, { failures, until: this.now() + wait });
    while (this.penalties.size > this.options.maxTracked) this.penalties.delete(this.penalties.keys().next().value!);
  }

  succeeded(address: string): void {
    this.penalties.delete(address);
  }

  get tracked(): number {
    return this.pending.size + this.penalties.size;
  }

  private refuse(why: string): string {
    this.refusedConnections++;
    return why;
  }
}
