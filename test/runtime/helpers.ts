// Shared set-up for runtime tests: a system, a probe, and specs for the test actor.
import { ActorSystem, moduleActor, type ActorSpec, type PlacementKind, type SystemOptions } from '../../runtime/index.js';
import { Probe, type ProbeEvent, type TestMessage } from './fixtures/actors.js';

export const FIXTURES = new URL('./fixtures/actors.js', import.meta.url);

export const PLACEMENTS: PlacementKind[] = ['local', 'thread'];

export function testActor(id: string, probePath = '', options: Omit<ActorSpec<TestMessage>, 'module' | 'export' | 'args' | 'factory'> & { hangInPostStop?: boolean } = {}): ActorSpec<TestMessage> {
  const { hangInPostStop = false, ...rest } = options;
  return moduleActor<TestMessage>(FIXTURES, 'TestActor', [id, probePath, hangInPostStop], rest);
}

export async function withProbe(options: SystemOptions = {}) {
  const system = new ActorSystem(options);
  const probe = new Probe();
  const probeRef = await system.spawn<ProbeEvent>('probe', { factory: () => probe, mailbox: { capacity: 100_000 } });
  return { system, probe, probeRef };
}

/** A flag an actor can wait on (across threads) until the test raises it. */
export function gate() {
  const buffer = new SharedArrayBuffer(4);
  const flag = new Int32Array(buffer);
  return { buffer, open: () => Atomics.store(flag, 0, 1) };
}
