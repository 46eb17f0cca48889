// A `troupe node --join` agent on 127.0.0.1 for the node tests: its output is
// kept and logged when it printed an error; the test's teardown kills it. And
// the check that a node gone for good ended every stream with a 503.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

const CLI = fileURLToPath(new URL('../../cli/troupe.js', import.meta.url));

export function joinAgent(t: ExecutionContext, port: number, name: string, token: string): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'node', '--join', `127.0.0.1:${port}`, '--name', name], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TROUPE_JOIN_TOKEN: token } });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    if (output.includes('Error')) t.log(`node agent output:\n${output}`);
  });
  return child;
}

/** Every stream ended with the engine's 503: EngineUnavailableError, status 503. */
export function assertAllUnavailable(t: ExecutionContext, results: readonly ({ error: Error } | object)[]): void {
  for (const result of results) {
    t.true('error' in result, JSON.stringify(result));
    if ('error' in result) {
      const error = (result as { error: Error & { status?: number } }).error;
      t.is(error.name, 'EngineUnavailableError');
      t.is(error.status, 503);
    }
  }
}
