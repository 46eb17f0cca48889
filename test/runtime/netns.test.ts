// The namespace pair the cross-node tests and the across-nodes bench use:
// the two ends reach each other over the veth, a failed setup leaves nothing
// behind, and destroy() kills what runs inside and removes both namespaces.
// Skipped, with the reason, where namespaces cannot be made.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { NetnsLink } from './netns.js';

const unavailable = NetnsLink.unavailable();
const run = unavailable ? test.skip : test.serial;
const why = unavailable ? ` (skipped: ${unavailable})` : '';

const leftovers = (prefix: string) => (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((l) => l.startsWith(prefix));

run(`the two ends talk over the shaped veth; destroy() kills what runs inside and removes both namespaces${why}`, async (t) => {
  const link = NetnsLink.create({ rate: '10gbit' });
  t.teardown(() => link.destroy());
  const server = link.spawn('a', process.execPath, ['-e',
    `require('net').createServer((s) => s.end('pong')).listen(7000, '${link.a.address}', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(server.stdout!, 'data');
  const client = spawnSync('ip', ['netns', 'exec', link.b.namespace, process.execPath, '-e',
    `require('net').connect(7000, '${link.a.address}').on('data', (d) => process.stdout.write(d))`], { encoding: 'utf8', timeout: 30_000 });
  t.is(client.stdout, 'pong', 'b reached a over the veth');
  const qdisc = spawnSync('ip', ['netns', 'exec', link.a.namespace, 'tc', 'qdisc', 'show', 'dev', link.a.device], { encoding: 'utf8' }).stdout;
  t.regex(qdisc, /htb 1: root/);
  const exited = once(server, 'exit');
  link.destroy();
  const [, signal] = await exited;
  t.is(signal, 'SIGKILL', 'the process inside was killed');
  t.false(NetnsLink.exists(link.a.namespace));
  t.false(NetnsLink.exists(link.b.namespace));
});

run(`a setup that fails half way removes what it made${why}`, (t) => {
  const before = leftovers(`troupe-${process.pid % 100_000}`);
  t.throws(() => NetnsLink.create({ rate: 'not-a-rate' }), { message: /tc class add/ });
  t.deepEqual(leftovers(`troupe-${process.pid % 100_000}`), before);
});
