// Shared set-up for runtime tests: a system, a probe, and specs for the test actor.
import { nanoid } from 'nanoid';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActorSystem, moduleActor, type ActorSpec, type SystemOptions } from '../../runtime/index.js';
import { Probe, type ProbeEvent, type TestMessage } from './fixtures/actors.js';

export const FIXTURES = new URL('./fixtures/actors.js', import.meta.url);

/** The placements a test can create on its own (nodes need a listener and an agent: see node tests). */
export const PLACEMENTS = ['local', 'thread', 'process'] as const;
export type TestPlacement = (typeof PLACEMENTS)[number];

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

/** A flag an actor can wait on until the test raises it: a file, so it works across threads and processes. */
export function gate() {
  const path = join(tmpdir(), `troupe-gate-${process.pid}-${nanoid(8)}`);
  return {
    path,
    open: () => writeFileSync(path, ''),
    remove: () => rmSync(path, { force: true }),
  };
}
