// Supervision, declared as data.
//
//   strategy      one_for_one   only the failed child restarts
//                 one_for_all   every child stops (reverse order), then all start (in order)
//                 rest_for_one  the failed child and those started after it restart
//   restart       permanent     always restarted
//                 transient     restarted unless it stopped normally
//                 temporary     never restarted
//   intensity / periodMs        more than `intensity` restarts within `periodMs`
//                               -> the supervisor stops all its children and fails
//                                  itself, escalating to its parent
//
// Children start in order and stop in reverse order, each within its
// shutdownTimeoutMs (then it is killed). A supervisor is an ordinary actor: it
// watches its children and acts on their death notices one at a time.
import { Actor, type ActorSpec, type Signal, type StopReason } from './actor.js';
import { SupervisorEscalationError } from './errors.js';
import type { ActorRef } from './ref.js';
import { DEFAULT_STOP_TIMEOUT_MS, type ActorSystem } from './system.js';

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';
export type Restart = 'permanent' | 'transient' | 'temporary';

export interface SupervisorSpec {
  strategy: Strategy;
  intensity: number;
  periodMs: number;
  children: ChildSpec[];
}

export type ChildSpec = {
  id: string;
  restart?: Restart;
  shutdownTimeoutMs?: number;
} & ({ actor: ActorSpec<any>; supervisor?: never } | { supervisor: SupervisorSpec; actor?: never });

export interface ChildInfo {
  id: string;
  path: string;
  running: boolean;
  incarnation: string | null;
  restarts: number;
}

export type SupervisorMessage =
  | { type: 'children'; replyTo: ActorRef<ChildInfo[]> }
  /** Adds a child after the others and starts it (Erlang's start_child); replies with its path, or an error text. */
  | { type: 'start-child'; child: ChildSpec; replyTo: ActorRef<{ path: string } | { error: string }> };

interface ChildState {
  spec: ChildSpec;
  path: string;
  /** Incarnation now running; null while stopped. A death notice for any other incarnation is stale. */
  incarnation: string | null;
  restarts: number;
}

const STRATEGIES: Strategy[] = ['one_for_one', 'one_for_all', 'rest_for_one'];
const RESTARTS: Restart[] = ['permanent', 'transient', 'temporary'];

/** Throws a TypeError naming the first thing wrong with a spec (before anything starts). */
export function validateSupervisorSpec(spec: SupervisorSpec, where = 'supervisor'): void {
  if (!STRATEGIES.includes(spec.strategy)) throw new TypeError(`${where}: strategy must be one of ${STRATEGIES.join(', ')}, got "${spec.strategy}"`);
  if (!Number.isInteger(spec.intensity) || spec.intensity < 0) throw new TypeError(`${where}: intensity must be an integer >= 0, got ${spec.intensity}`);
  if (!(spec.periodMs > 0)) throw new TypeError(`${where}: periodMs must be > 0, got ${spec.periodMs}`);
  const ids = new Set<string>();
  for (const child of spec.children) {
    if (ids.has(child.id)) throw new TypeError(`${where}: two children have the id "${child.id}"`);
    ids.add(child.id);
    if (child.restart && !RESTARTS.includes(child.restart)) throw new TypeError(`${where}/${child.id}: restart must be one of ${RESTARTS.join(', ')}`);
    if (!child.actor === !child.supervisor) throw new TypeError(`${where}/${child.id}: give exactly one of "actor" or "supervisor"`);
    if (child.supervisor) validateSupervisorSpec(child.supervisor, `${where}/${child.id}`);
  }
}

export class Supervisor extends Actor<SupervisorMessage> {
  private readonly children: ChildState[] = [];
  private restartTimes: number[] = [];

  constructor(private readonly spec: SupervisorSpec) {
    super();
    validateSupervisorSpec(spec);
  }

  override async preStart(): Promise<void> {
    const self = this.context.self.path;
    for (const spec of this.spec.children) this.children.push({ spec, path: `${self}/${spec.id}`, incarnation: null, restarts: 0 });
    try {
      for (const child of this.children) await this.startChild(child);
    } catch (error) {
      await this.stopChildren(this.children);
      throw error;
    }
  }

  async receive(message: SupervisorMessage): Promise<void> {
    if (message.type === 'children') {
      message.replyTo.tell(this.children.map((c) => ({
        id: c.spec.id, path: c.path, running: c.incarnation !== null, incarnation: c.incarnation, restarts: c.restarts,
      })));
    } else if (message.type === 'start-child') {
      const spec = message.child;
      try {
        validateSupervisorSpec({ ...this.spec, children: [...this.children.map((c) => c.spec), spec] }, this.context.self.path);
        const child: ChildState = { spec, path: `${this.context.self.path}/${spec.id}`, incarnation: null, restarts: 0 };
        await this.startChild(child);
        this.children.push(child);
        message.replyTo.tell({ path: child.path });
      } catch (error) {
        message.replyTo.tell({ error: (error as Error).message });
      }
    }
  }

  override async onSignal(signal: Signal): Promise<void> {
    if (signal.type !== 'terminated') return super.onSignal(signal);
    const child = this.children.find((c) => c.path === signal.ref.path);
    if (!child || child.incarnation !== signal.incarnation) return; // stale, or a stop this supervisor made
    child.incarnation = null;
    if (!shouldRestart(child.spec.restart ?? 'permanent', signal.reason)) return;
    await this.restartAfter(child);
  }

  override async postStop(_reason: StopReason): Promise<void> {
    await this.stopChildren(this.children);
  }

  private async restartAfter(failed: ChildState): Promise<void> {
    const index = this.children.indexOf(failed);
    const affected = this.spec.strategy === 'one_for_one' ? [failed]
      : this.spec.strategy === 'one_for_all' ? this.children
      : this.children.slice(index);
    for (;;) {
      await this.countRestart(failed);
      await this.stopChildren(affected);
      try {
        for (const child of affected) {
          // stopped or killed meanwhile (a restart can outlive a stop timeout): start nothing more
          if (!this.current) return void (await this.stopChildren(this.children));
          // a temporary sibling is not brought back by a group restart
          if (child !== failed && (child.spec.restart ?? 'permanent') === 'temporary') continue;
          await this.startChild(child);
        }
        return;
      } catch {
        // a child that fails to start counts as another restart: try again, or escalate
      }
    }
  }

  /** Whether this incarnation still runs at its path. */
  private get current(): boolean {
    return this.context.system.placementOf(this.context.self)?.incarnation === this.context.incarnation;
  }

  /** Records a restart; past the intensity, stops every child and fails this supervisor. */
  private async countRestart(child: ChildState): Promise<void> {
    const now = Date.now();
    this.restartTimes = this.restartTimes.filter((t) => now - t < this.spec.periodMs);
    this.restartTimes.push(now);
    child.restarts++;
    if (this.restartTimes.length > this.spec.intensity) {
      await this.stopChildren(this.children);
      throw new SupervisorEscalationError(this.context.self.path, this.restartTimes.length, this.spec.periodMs, child.spec.id);
    }
  }

  private async startChild(child: ChildState): Promise<void> {
    const system = this.context.system;
    const spec: ActorSpec<any> = child.spec.supervisor
      ? { factory: () => new Supervisor(child.spec.supervisor!) }
      : child.spec.actor!;
    child.incarnation = await system.spawnIncarnation(child.path, spec);
    this.context.watch(system.refFor(child.path));
  }

  /** Stops the running ones among `children`, last first. */
  private async stopChildren(children: ChildState[]): Promise<void> {
    for (const child of [...children].reverse()) {
      if (child.incarnation === null) continue;
      child.incarnation = null; // its death notice is now stale
      const ref = this.context.system.refFor(child.path);
      await this.context.system.stop(ref, child.spec.shutdownTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
    }
  }
}

function shouldRestart(restart: Restart, reason: StopReason): boolean {
  if (restart === 'permanent') return true;
  if (restart === 'transient') return reason.kind !== 'normal';
  return false;
}

/** Starts a supervision tree at `path`; resolves once every child has started, in order. */
export function supervise(system: ActorSystem, path: string, spec: SupervisorSpec): Promise<ActorRef<SupervisorMessage>> {
  validateSupervisorSpec(spec, path);
  return system.spawn<SupervisorMessage>(path, { factory: () => new Supervisor(spec) });
}
