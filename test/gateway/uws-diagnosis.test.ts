// When uWebSockets.js cannot load, `troupe serve` says why: the glibc its
// binary needs against the one found, and the Node versions whose build
// loads on this system. Fed a fake loader error and a fake system.
import test from 'ava';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { loadUws } from '../../gateway/uws.js';
import { explainUwsFailure, highestGlibc, packageDirOf, UwsLoadError, type UwsProbe } from '../../gateway/uws-diagnosis.js';

const debian12: UwsProbe = {
  platform: 'linux', arch: 'x64', abi: 137, nodeVersion: '24.11.0', glibc: '2.36',
  binaries: [{ abi: 108, glibc: '2.27' }, { abi: 115, glibc: '2.27' }, { abi: 120, glibc: '2.27' }, { abi: 127, glibc: '2.38' }, { abi: 137, glibc: '2.38' }, { abi: 141, glibc: '2.38' }],
};
const GLIBC_ERROR = "This version of uWS.js supports only Node.js versions 16, 18, 20, 21, 22, 24 and 25 on (glibc) Linux...\n\n" +
  "Error: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found (required by /x/node_modules/uWebSockets.js/uws_linux_x64_137.node)";

test('a binary that needs a newer glibc: found vs needed, and the Node versions that work here', (t) => {
  const error = t.throws(() => loadUws(() => { throw new Error(GLIBC_ERROR); }, () => debian12), { instanceOf: UwsLoadError })!;
  t.is(error.message, 'uWebSockets.js cannot load: its build for Node 24 (this is Node 24.11.0, uws_linux_x64_137.node) needs glibc 2.38, ' +
    'and this system has glibc 2.36. Node versions whose uWS build loads here: Node 20, Node 21. ' +
    'Run troupe with one of those, or on a system with glibc >= 2.38 (Debian 13, Ubuntu 24.04, Fedora 40 or later).');
  t.false(error.message.includes('    at '), 'no stack trace in the message');
});

test('a Node without a build, and any other loader failure', (t) => {
  t.is(explainUwsFailure({ ...debian12, abi: 131, nodeVersion: '23.1.0' }, 'Cannot find module'),
    'uWebSockets.js has no build for Node 23.1.0 (ABI 131) on linux-x64 (no uws_linux_x64_131.node). Node versions whose uWS build loads here: Node 20, Node 21.');
  t.is(explainUwsFailure({ ...debian12, abi: 115, nodeVersion: '20.19.0' }, 'first line\nError: some.so: cannot open shared object file'),
    'uWebSockets.js (uws_linux_x64_115.node) failed to load on Node 20.19.0: Error: some.so: cannot open shared object file. Node versions whose uWS build loads here: Node 20, Node 21.');
  t.regex(explainUwsFailure({ ...debian12, glibc: '2.41' }, GLIBC_ERROR), /needs glibc 2\.38/, 'the loader\'s own word wins');
  t.regex(explainUwsFailure({ ...debian12, abi: 127, nodeVersion: '22.1.0', glibc: '2.41' }, 'boom'), /Node 20, Node 21, Node 22, Node 24, Node 25/);
});

test('loadUws hands back what loads', (t) => {
  const fake = { App: () => null } as never;
  t.is(loadUws(() => fake, () => debian12), fake);
});

test('the glibc a shipped binary needs is read from its symbol versions', (t) => {
  const dir = packageDirOf(createRequire(import.meta.url).resolve('uWebSockets.js'));
  const node24 = join(dir, 'uws_linux_x64_137.node');
  const node20 = join(dir, 'uws_linux_x64_115.node');
  if (!existsSync(node24) || !existsSync(node20)) {
    t.log('no linux-x64 uWS binaries here');
    t.is(process.platform === 'linux' && process.arch === 'x64', false);
    return;
  }
  t.is(highestGlibc(node24), '2.38');
  t.is(highestGlibc(node20), '2.27');
});
