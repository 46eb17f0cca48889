// Models by hub id against a local mock hub on 127.0.0.1 (a port the OS
// picks) serving the hub's routes that @huggingface/hub and the downloader
// use, for a generated tiny model: revision info, the file tree (LFS files
// with their sha256) and /resolve/ with Range. Checked: the HF cache layout,
// reuse, revisions, a gated model without and with a token, an interrupted
// download resumed, and offline mode.
import test from 'ava';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { HubError, isHubId, resolveHubModel } from '../../models/hub.js';
import { generatedModel, tempDir } from './helpers.js';

const COMMIT = 'a'.repeat(40);
const TOKEN = 'hf_testtoken';

interface MockHub {
  url: string;
  requests: IncomingMessage[];
  /** The next download of this path sends half the file, then drops the connection. */
  cutNext: Set<string>;
  close(): Promise<void>;
}

async function mockHub(files: Map<string, Buffer>, gated: Set<string>): Promise<MockHub> {
  const requests: IncomingMessage[] = [];
  const cutNext = new Set<string>();
  const entry = (path: string, data: Buffer) => {
    const gitOid = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
    if (!path.endsWith('.safetensors')) return { type: 'file', path, size: data.length, oid: gitOid };
    return { type: 'file', path, size: 134, oid: gitOid, lfs: { oid: createHash('sha256').update(data).digest('hex'), size: data.length, pointerSize: 134 } };
  };
  const server: Server = createServer((req, res) => {
    requests.push(req);
    const url = new URL(req.url!, 'http://x');
    const authorized = req.headers.authorization === `Bearer ${TOKEN}`;
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    const known = (repo: string) => repo === 'org/tiny' || repo === 'org/gated';
    const revisionOk = (rev: string) => ['main', 'v1', COMMIT].includes(decodeURIComponent(rev));
    if (m) {
      if (!known(m[1]!) || !revisionOk(m[2]!)) return void res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end(JSON.stringify({ error: 'Repository not found' }));
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        _id: '1', id: m[1], sha: COMMIT, private: false, gated: gated.has(m[1]!) ? 'manual' : false, downloads: 0, likes: 0, lastModified: '2024-07-23T00:00:00.000Z',
      }));
    }
    m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    if (m) {
      if (gated.has(m[1]!) && !authorized) return void res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end(JSON.stringify({ error: 'Access to model is restricted' }));
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([...files].map(([p, d]) => entry(p, d))));
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (m) {
      if (gated.has(m[1]!) && !authorized) return void res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end('restricted');
      const data = files.get(decodeURIComponent(m[3]!));
      if (!data || m[2] !== COMMIT) return void res.writeHead(404).end('not found');
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = range ? Number(range[1]) : 0;
      const body = data.subarray(start);
      res.writeHead(range ? 206 : 200, { 'content-length': body.length, ...(range ? { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}) });
      if (cutNext.delete(m[3]!)) {
        res.write(body.subarray(0, body.length >> 1));
        setTimeout(() => res.destroy(), 50);
        return;
      }
      return void res.end(body);
    }
    res.writeHead(404).end('no such route');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests, cutNext,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

let hub: MockHub;
let files: Map<string, Buffer>;
test.before(async () => {
  const dir = generatedModel('tiny', 5);
  files = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
  hub = await mockHub(files, new Set(['org/gated']));
});
test.after.always(async () => {
  await hub?.close();
});

const envFor = (extra: Record<string, string> = {}) => ({ HF_HOME: tempDir('hf-home'), HF_ENDPOINT: hub.url, ...extra });

test.serial('a hub id downloads into the HF cache layout: blobs, snapshots/<commit> links, refs/<revision>; a second call downloads nothing', async (t) => {
  const env = envFor();
  const snapshot = await resolveHubModel('org/tiny', { env, progress: false });
  const repo = join(env.HF_HOME, 'hub', 'models--org--tiny');
  t.is(snapshot, join(repo, 'snapshots', COMMIT));
  t.is(readFileSync(join(repo, 'refs', 'main'), 'utf8'), COMMIT);
  for (const [name, data] of files) {
    t.true(lstatSync(join(snapshot, name)).isSymbolicLink(), `${name} is a link`);
    t.regex(readlinkSync(join(snapshot, name)), /^\.\.\/\.\.\/blobs\//);
    t.true(readFileSync(join(snapshot, name)).equals(data), `${name} has the hub's bytes`);
  }
  const sha = createHash('sha256').update(files.get('model.safetensors')!).digest('hex');
  t.true(existsSync(join(repo, 'blobs', sha)), 'an LFS blob is named by its sha256');
  const before = hub.requests.filter((r) => r.url!.includes('/resolve/')).length;
  t.is(await resolveHubModel('org/tiny', { env, progress: false }), snapshot);
  t.is(hub.requests.filter((r) => r.url!.includes('/resolve/')).length, before, 'nothing downloaded again');
});

test.serial('--revision resolves through the hub and is recorded under refs/', async (t) => {
  const env = envFor();
  const snapshot = await resolveHubModel('org/tiny', { env, revision: 'v1', progress: false });
  t.is(readFileSync(join(env.HF_HOME, 'hub', 'models--org--tiny', 'refs', 'v1'), 'utf8'), COMMIT);
  t.true(existsSync(join(snapshot, 'config.json')));
  await t.throwsAsync(resolveHubModel('org/tiny', { env, revision: 'nope', progress: false }), { instanceOf: HubError, message: /not found/ });
});

test.serial('a gated model without HF_TOKEN is a clear error; with it, the download goes through', async (t) => {
  await t.throwsAsync(resolveHubModel('org/gated', { env: envFor(), progress: false }), { instanceOf: HubError, message: /gated model.*HF_TOKEN/ });
  const snapshot = await resolveHubModel('org/gated', { env: envFor({ HF_TOKEN: TOKEN }), progress: false });
  t.true(readFileSync(join(snapshot, 'model.safetensors')).equals(files.get('model.safetensors')!));
});

test.serial('an interrupted download resumes where it stopped, with a Range request, and the result has the right hash', async (t) => {
  const env = envFor();
  hub.cutNext.add('model.safetensors');
  await t.throwsAsync(resolveHubModel('org/tiny', { env, progress: false }));
  const blobs = join(env.HF_HOME, 'hub', 'models--org--tiny', 'blobs');
  const partial = readdirSync(blobs).find((f) => f.endsWith('.incomplete'))!;
  const size = files.get('model.safetensors')!.length;
  const have = statSync(join(blobs, partial)).size;
  t.true(have > 0 && have < size, `a partial blob of ${have} / ${size} bytes is left`);
  const snapshot = await resolveHubModel('org/tiny', { env, progress: false });
  const resumed = hub.requests.filter((r) => r.url!.endsWith('/model.safetensors')).at(-1)!;
  t.is(resumed.headers.range, `bytes=${have}-`);
  t.true(readFileSync(join(snapshot, 'model.safetensors')).equals(files.get('model.safetensors')!));
  t.false(readdirSync(blobs).some((f) => f.endsWith('.incomplete')));
});

test.serial('HF_HUB_OFFLINE uses the cache without a request, and says so when the model is not there', async (t) => {
  const env = envFor();
  const online = await resolveHubModel('org/tiny', { env, progress: false });
  const count = hub.requests.length;
  t.is(await resolveHubModel('org/tiny', { env: { ...env, HF_HUB_OFFLINE: '1' }, progress: false }), online);
  t.is(hub.requests.length, count, 'offline: no request');
  await t.throwsAsync(resolveHubModel('org/other', { env: { ...env, HF_HUB_OFFLINE: '1' }, progress: false }), { instanceOf: HubError, message: /HF_HUB_OFFLINE.*not in the cache/ });
});

test.serial('hub ids are org/name; paths that exist are directories', (t) => {
  t.true(isHubId('meta-llama/Llama-3.2-1B-Instruct'));
  t.false(isHubId('/models/llama'));
  t.false(isHubId('./llama'));
  t.false(isHubId(tempDir('a-dir')));
});
