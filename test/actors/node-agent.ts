// A `troupe node --join` agent on 127.0.0.1 for the node tests: its output is
// kept and logged when it printed an error; the test's teardown kills it.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

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
