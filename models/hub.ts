// Models by hub id (`troupe serve meta-llama/Llama-3.2-1B-Instruct`): the
// repository at a revision, downloaded into and reused from the standard
// Hugging Face cache, so `huggingface-cli`, transformers and vLLM share it:
//
//   $HF_HUB_CACHE (else $HF_HOME/hub, else ~/.cache/huggingface/hub)
//     models--org--name/refs/<revision>            the commit the revision resolved to
//     models--org--name/blobs/<etag>               file contents (LFS: the sha256)
//     models--org--name/snapshots/<commit>/<path>  relative symlink to the blob
//
// @huggingface/hub resolves the revision (modelInfo) and lists the files with
// their sizes and LFS sha256 (listFiles); the bytes come from
// {endpoint}/{repo}/resolve/{commit}/{path}, appended to blobs/<etag>.incomplete
// with an HTTP Range request when an earlier download was interrupted; a blob
// is renamed into place only once its size (and sha256, for LFS files) match.
// HF_ENDPOINT replaces https://huggingface.co; HF_TOKEN authenticates;
// HF_HUB_OFFLINE=1 uses only what the cache holds.
import { listFiles, modelInfo } from '@huggingface/hub';
import { Presets, SingleBar } from 'cli-progress';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, createWriteStream } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export class HubError extends Error {
  override name = 'HubError';
}

/** org/name, as the hub spells repository ids; a path that exists is never one. */
export function isHubId(model: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(model) && !existsSync(model);
}

export interface HubOptions {
  revision?: string;
  env?: NodeJS.ProcessEnv;
  progress?: boolean;
  /** Weights and tokenizer only, as the engine needs (default); others are skipped. */
  filter?: (path: string) => boolean;
}

function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['HF_HUB_CACHE']) return env['HF_HUB_CACHE'];
  return join(env['HF_HOME'] ?? join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'huggingface'), 'hub');
}

const NEEDED = (path: string): boolean => /^(config\.json|generation_config\.json|tokenizer(_config)?\.json|special_tokens_map\.json|[^/]*\.safetensors(\.index\.json)?)$/.test(path);
const offline = (env: NodeJS.ProcessEnv): boolean => ['1', 'true', 'yes', 'on'].includes((env['HF_HUB_OFFLINE'] ?? '').toLowerCase());

/** The snapshot directory of `id` at `revision`, downloading what is missing. */
export async function resolveHubModel(id: string, options: HubOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const revision = options.revision ?? 'main';
  const repoDir = join(hubCacheDir(env), `models--${id.split('/').join('--')}`);
  if (offline(env)) return cachedSnapshot(repoDir, id, revision);

  const hubUrl = (env['HF_ENDPOINT'] ?? 'https://huggingface.co').replace(/\/+$/, '');
  const accessToken = env['HF_TOKEN'] || undefined;
  const credentials = accessToken ? { accessToken } : {};
  let commit: string;
  try {
    const info = await modelInfo({ name: id, revision, hubUrl, additionalFields: ['sha'], ...credentials });
    commit = (info as unknown as { sha?: string }).sha ?? '';
    if (info.gated && !accessToken) throw new HubError(`${id} is a gated model: accept its licence on ${hubUrl}/${id} and set HF_TOKEN to a token of that account`);
  } catch (error) {
    if (error instanceof HubError) throw error;
    throw hubError(id, revision, hubUrl, error);
  }
  if (!/^[0-9a-f]{40}$/.test(commit)) throw new HubError(`${hubUrl} gave no commit for ${id} at revision ${revision}`);

  const files: { path: string; size: number; etag: string; sha256?: string }[] = [];
  try {
    for await (const f of listFiles({ repo: { type: 'model', name: id }, revision: commit, recursive: true, hubUrl, ...credentials })) {
      if (f.type !== 'file' || !(options.filter ?? NEEDED)(f.path)) continue;
      files.push({ path: f.path, size: f.lfs?.size ?? f.size, etag: f.lfs?.oid ?? f.oid ?? f.path, ...(f.lfs ? { sha256: f.lfs.oid } : {}) });
    }
  } catch (error) {
    throw hubError(id, revision, hubUrl, error);
  }
  if (!files.some((f) => f.path === 'config.json')) throw new HubError(`${id} at ${revision} has no config.json: not a transformers model`);

  const snapshot = join(repoDir, 'snapshots', commit);
  const missing = files.filter((f) => !existsSync(join(repoDir, 'blobs', f.etag)));
  const total = missing.reduce((a, f) => a + f.size, 0);
  const bar = options.progress === false || total === 0 ? null : new SingleBar({ format: `${id} {bar} {percentage}% | {value}/{total} MB`, formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? (v / 1e6).toFixed(1) : String(v)) }, Presets.shades_classic);
  bar?.start(total, 0);
  try {
    for (const f of missing) await downloadBlob(`${hubUrl}/${id}/resolve/${commit}/${encodeURI(f.path)}`, join(repoDir, 'blobs'), f, accessToken, (n) => bar?.increment(n));
  } catch (error) {
    throw error instanceof HubError ? error : hubError(id, revision, hubUrl, error);
  } finally {
    bar?.stop();
  }
  for (const f of files) {
    const link = join(snapshot, f.path);
    mkdirSync(dirname(link), { recursive: true });
    rmSync(link, { force: true });
    symlinkSync(relative(dirname(link), join(repoDir, 'blobs', f.etag)), link);
  }
  mkdirSync(join(repoDir, 'refs'), { recursive: true });
  if (revision !== commit) writeFileSync(join(repoDir, 'refs', revision), commit);
  return snapshot;
}

function cachedSnapshot(repoDir: string, id: string, revision: string): string {
  const refFile = join(repoDir, 'refs', revision);
  const commit = /^[0-9a-f]{40}$/.test(revision) ? revision : existsSync(refFile) ? readFileSync(refFile, 'utf8').trim() : null;
  const snapshot = commit === null ? null : join(repoDir, 'snapshots', commit);
  if (snapshot === null || !existsSync(join(snapshot, 'config.json'))) {
    throw new HubError(`HF_HUB_OFFLINE is set and ${id} at revision ${revision} is not in the cache (${repoDir}); download it once without HF_HUB_OFFLINE`);
  }
  return snapshot;
}

function hubError(id: string, revision: string, hubUrl: string, error: unknown): HubError {
  const status = (error as { statusCode?: number }).statusCode;
  const message = (error as Error).message;
  if (status === 401 || status === 403) return new HubError(`${hubUrl} refused access to ${id} (HTTP ${status}): a gated or private model needs HF_TOKEN set to a token with access (${message})`);
  if (status === 404) return new HubError(`${id} at revision ${revision} was not found on ${hubUrl}`);
  return new HubError(`cannot download ${id} from ${hubUrl}: ${message}`);
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Downloads one file into blobs/<etag>, resuming blobs/<etag>.incomplete; checks its size and sha256. */
async function downloadBlob(url: string, blobs: string, f: { path: string; size: number; etag: string; sha256?: string }, token: string | undefined, onBytes: (n: number) => void): Promise<void> {
  mkdirSync(blobs, { recursive: true });
  const partial = join(blobs, `${f.etag}.incomplete`);
  let have = existsSync(partial) ? statSync(partial).size : 0;
  if (have > f.size) {
    rmSync(partial);
    have = 0;
  }
  const headers: Record<string, string> = {};
  if (token) headers['authorization'] = `Bearer ${token}`;
  if (have > 0) headers['range'] = `bytes=${have}-`;
  if (have < f.size) {
    const response = await fetch(url, { headers });
    if (response.status === 401 || response.status === 403) throw new HubError(`${url} refused access (HTTP ${response.status}): set HF_TOKEN to a token with access`);
    if (!response.ok || !response.body) throw new HubError(`${url} answered HTTP ${response.status}`);
    const resumed = response.status === 206;
    if (!resumed) have = 0; // the server sent the whole file
    onBytes(have);
    const out = createWriteStream(partial, { flags: resumed ? 'a' : 'w' });
    const counted = Readable.fromWeb(response.body as never).on('data', (chunk: Buffer) => onBytes(chunk.length));
    try {
      await pipeline(counted, out);
    } catch (error) {
      // pipeline rejects while the last write may still be in flight; the partial blob's size is final only once the file is closed.
      if (!out.closed) await once(out, 'close');
      throw error;
    }
  } else {
    onBytes(have);
  }
  const size = statSync(partial).size;
  if (size !== f.size) throw new HubError(`${f.path}: downloaded ${size} bytes, the hub lists ${f.size}; run again to resume`);
  if (f.sha256 !== undefined) {
    const sha = await sha256Of(partial);
    if (sha !== f.sha256) {
      rmSync(partial);
      throw new HubError(`${f.path}: sha256 ${sha} is not the hub's ${f.sha256}; the partial download was removed, run again`);
    }
  }
  renameSync(partial, join(blobs, f.etag));
}
