// The actors a leader may place on a node, by name. A spawn across a node
// link names an entry here, never a module URL: each side resolves the name
// against its own install, so neither ever imports a module its peer chose.
// Adding an actor that can run on nodes means adding it here.
interface RemoteActorEntry {
  /** Relative to this file, inside the install. */
  module: string;
  export: string;
}

const ENTRIES: Readonly<Record<string, RemoteActorEntry>> = {
  rank: { module: '../../actors/rank/rank-actor.js', export: 'RankActor' },
  // the runtime's test and benchmark actors; they resolve only in a build that has them
  'runtime-test-actor': { module: '../../test/runtime/fixtures/actors.js', export: 'TestActor' },
  'bench-echo': { module: '../../bench/fixtures/echo-actor.js', export: 'EchoActor' },
};

function resolved(entry: RemoteActorEntry): string {
  return new URL(entry.module, import.meta.url).href;
}

/** The registry name of a module + export, or undefined when it may not be placed on a node. */
export function remoteActorName(module: string, exportName: string): string | undefined {
  for (const [name, entry] of Object.entries(ENTRIES)) {
    if (entry.export === exportName && resolved(entry) === module) return name;
  }
  return undefined;
}

/** The module URL and export for a registry name; throws for a name not in the registry. */
export function remoteActorModule(name: unknown): { module: string; export: string } {
  const entry = typeof name === 'string' && Object.hasOwn(ENTRIES, name) ? ENTRIES[name]! : undefined;
  if (!entry) throw new TypeError(`"${String(name)}" is not an actor this node may run (known: ${Object.keys(ENTRIES).join(', ')})`);
  return { module: resolved(entry), export: entry.export };
}
