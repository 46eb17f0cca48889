// A topology that cannot run: every problem found, each with what to change.
export class TopologyError extends Error {
  override name = 'TopologyError';
  constructor(readonly source: string, readonly problems: string[]) {
    super(`${source}: this topology cannot run:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}
