// pp2 between two network namespaces (test/runtime/netns.ts): the leader in
// namespace a, stage 1 on a `troupe node` agent in namespace b that joins it
// over a veth pair shaped by htb to 1 Gbit/s. Same tokens as one rank; the
// stage really ran in the agent on the other side of the link. Skipped, with
// the reason, where namespaces cannot be made (not root, not Linux, no ip).
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { GenerationParams } from '../../actors/engine/request-params.js';
import { Troupe } from '../../actors/engine/troupe.js';
import { generatedModel, randomTokens } from '../models/helpers.js';
import { NetnsLink } from '../runtime/netns.js';

const CLI = fileURLToPath(new URL('../../cli/troupe.js', import.meta.url));
const LEADER = fileURLToPath(new URL('./fixtures/netns-leader.js', import.meta.url));
const TOKEN = randomBytes(32).toString('hex');

const REQUESTS: { prompt: number[]; params: GenerationParams }[] = Array.from({ length: 3 }, (_, i) => ({
  prompt: randomTokens(5 + i * 23, 128256, 300 + i),
  params: { maxTokens: 12, ignoreEos: true, ...(i % 2 ? { temperature: 0.8, seed: 5 + i } : { temperature: 0 }) },
}));

const unavailable = NetnsLink.unavailable();

/** Lines a child prints, as JSON objects, one promise per wanted key. */
function jsonLines(child: ChildProcess) {
  const seen: Record<string, unknown>[] = [];
  const waiters: { key: string; resolve: (v: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let value: Record<string, unknown>;
    try { value = JSON.parse(line) as Record<string, unknown>; } catch { return; }
    seen.push(value);
    for (const w of [...waiters]) if (w.key in value || 'error' in value) { waiters.splice(waiters.indexOf(w), 1); w.resolve(value); }
  });
  return (key: string) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const found = seen.find((v) => key in v || 'error' in v);
    if (found) return resolve(found);
    waiters.push({ key, resolve });
    child.once('exit', (code) => setTimeout(() => reject(new Error(`the leader exited (${code}) before printing ${key}`)), 100));
  });
}

if (unavailable) {
  test.skip(`pp2 across two network namespaces over a 1 Gbit/s veth (skipped: ${unavailable})`, () => {});
} else {
  test('pp2 across two network namespaces over a 1 Gbit/s veth gives one rank\'s tokens; the namespaces are gone afterwards', async (t) => {
    const model = generatedModel('tiny', 7);
    const single = await Troupe.start({ model, kvCacheMemory: '4MiB', maxModelLen: 512, threads: 1, maxNumBatchedTokens: 64, log: () => {} });
    const want = await Promise.all(REQUESTS.map((r) => single.generate([r.prompt], r.params).then((g) => g[0]!.outputs[0]!.tokenIds)));
    await single.shutdown();

    const link = NetnsLink.create({ rate: '1gbit' });
    t.teardown(() => link.destroy());
    const env = { ...process.env, TROUPE_JOIN_TOKEN: TOKEN };
    let output = '';
    const leader = link.spawn('a', process.execPath, [LEADER, JSON.stringify({ model, listen: link.a.address, nodeAddress: link.b.address, requests: REQUESTS })],
      { stdio: ['ignore', 'pipe', 'pipe'], env });
    leader.stderr!.on('data', (d) => (output += d));
    const next = jsonLines(leader);
    const listening = await next('listening');
    t.falsy(listening['error'], String(listening['error']));
    const agent = link.spawn('b', process.execPath, [CLI, 'node', '--join', `${link.a.address}:${listening['listening']}`, '--name', 'n1'],
      { stdio: ['ignore', 'pipe', 'pipe'], env });
    agent.stdout!.on('data', (d) => (output += d));
    agent.stderr!.on('data', (d) => (output += d));
    const done = await next('results');
    t.falsy(done['error'], `${String(done['error'])}\n${output}`);
    t.deepEqual(done['results'], want);
    t.is(done['stage1Pid'], agent.pid, 'stage 1 ran in the agent in the other namespace');
    t.true((done['hiddenReceived'] as number) > 0, 'hidden states crossed the link');
    link.destroy();
    t.false(NetnsLink.exists(link.a.namespace) || NetnsLink.exists(link.b.namespace), 'both namespaces were removed');
  });
}
