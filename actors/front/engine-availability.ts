// Whether the engine below the front can make progress, as the front sees
// it. The engine is up from the moment a scheduler collects the unfinished
// requests (resubmit-all) until that scheduler stops. While it is down,
// requests wait for the restart that recomputes them; if no scheduler comes
// back within `recoveryTimeoutMs` (restart intensity exceeded, a node gone
// past its rejoin timeout), the engine is unavailable: every request ends
// with EngineUnavailableError and new ones are refused, until a scheduler
// comes back.
export class EngineUnavailableError extends Error {
  override name = 'EngineUnavailableError';
  /** HTTP status the gateway answers with. */
  readonly status = 503;
}

export const DEFAULT_ENGINE_RECOVERY_TIMEOUT_MS = 120_000;

export type EngineState = { state: 'starting' | 'up' } | { state: 'down'; since: number; why: string } | { state: 'unavailable'; why: string };

export class EngineAvailability {
  private current: EngineState = { state: 'starting' };
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly recoveryTimeoutMs: number, private readonly onUnavailable: (error: EngineUnavailableError) => void) {}

  get status(): EngineState {
    return this.current;
  }

  /** The error a new request gets now, or null when it may be accepted. */
  refusal(): EngineUnavailableError | null {
    return this.current.state === 'unavailable' ? new EngineUnavailableError(`the engine is unavailable: ${this.current.why}`) : null;
  }

  up(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.current = { state: 'up' };
  }

  down(why: string): void {
    if (this.current.state === 'down' || this.current.state === 'unavailable') return;
    this.current = { state: 'down', since: Date.now(), why };
    this.timer = setTimeout(() => this.unavailable(`${why}, and it did not recover within ${this.recoveryTimeoutMs} ms`), this.recoveryTimeoutMs);
    this.timer.unref();
  }

  unavailable(why: string): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.current = { state: 'unavailable', why };
    this.onUnavailable(new EngineUnavailableError(`the engine is unavailable: ${why}`));
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
