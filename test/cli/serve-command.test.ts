// `troupe serve` as a user runs it, in a child process: the embedded default
// model generated into an empty cache directory, the startup lines, and
// SIGTERM: requests in flight finish (or, past --shutdown-timeout, end with
// finish_reason "abort"), no new connection is accepted, exit code 0.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelDir, troupeCacheDir } from '../../cli/default-model.js';
import { resolveServeConfig } from '../../cli/serve-command.js';
import { generatedModel, tempDir } from '../models/helpers.js';

const CLI = fileURLToPath(new URL('../../cli/troupe.js', import.meta.url));

interface Served {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `troupe serve ARGS` on a free port; resolves once it prints its address. */
function serve(t: { teardown(fn: () => void): void }, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--threads', '1', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = /OpenAI API on (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(output);
      if (match) resolve({ child, url: match[1]!, output: () => output, exited });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening:\n${output}`)));
  });
}

/** Opens a streamed completion; resolves with a reader once the first chunk arrived. */
async function openStream(url: string, body: Record<string, unknown>) {
  const response = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...body, stream: true }) });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('data: ')) text += decoder.decode((await reader.read()).value);
  return {
    /** Everything until the server ends the stream. */
    async rest(): Promise<string> {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += decoder.decode(value);
      }
    },
  };
}

const finishReasons = (sse: string) => sse.split('\n\n').filter((e) => e.startsWith('data: {'))
  .map((e) => (JSON.parse(e.slice(6)) as { choices: { finish_reason: string | null }[] }).choices[0]?.finish_reason).filter(Boolean);

test('with no model, `troupe serve` expands the embedded default into the cache directory and serves it; SIGTERM lets the request in flight finish, then exits 0', async (t) => {
  const cache = tempDir('serve-cache');
  const served = await serve(t, [], { XDG_CACHE_HOME: cache });
  t.true(existsSync(join(defaultModelDir({ XDG_CACHE_HOME: cache }), 'model.safetensors')), 'the default model was generated in the cache');
  t.is(troupeCacheDir({ XDG_CACHE_HOME: cache }), join(cache, 'troupe'));
  t.regex(served.output(), /the embedded default/);
  t.regex(served.output(), /KV cache: \d+ tokens/);
  t.regex(served.output(), /rank 0: stage 0/, 'the topology is printed');
  const models = (await (await fetch(`${served.url}/v1/models`)).json()) as { data: { id: string; max_model_len: number }[] };
  t.is(models.data[0]!.id, 'troupe-demo-36m');
  t.is(models.data[0]!.max_model_len, 8192);

  const stream = await openStream(served.url, { prompt: 'finish me', max_tokens: 120, ignore_eos: true });
  served.child.kill('SIGTERM');
  const sse = await stream.rest();
  t.deepEqual(finishReasons(sse), ['length'], 'the request in flight finished in full');
  t.true(sse.endsWith('data: [DONE]\n\n'));
  t.is(await served.exited, 0);
  await t.throwsAsync(fetch(`${served.url}/health`), undefined, 'nothing listens any more');
  t.regex(served.output(), /SIGTERM/);
});

test('past --shutdown-timeout the requests in flight end with finish_reason "abort", and the exit code is still 0', async (t) => {
  const served = await serve(t, [generatedModel('tiny', 7), '--kv-cache-memory', '16MiB', '--max-model-len', '4096', '--shutdown-timeout', '0.3', '--served-model-name', 'a', 'b']);
  const models = (await (await fetch(`${served.url}/v1/models`)).json()) as { data: { id: string }[] };
  t.deepEqual(models.data.map((m) => m.id), ['a', 'b']);
  const stream = await openStream(served.url, { model: 'b', prompt: 'never finishes in time', max_tokens: 4000, ignore_eos: true });
  served.child.kill('SIGTERM');
  const sse = await stream.rest();
  t.deepEqual(finishReasons(sse), ['abort']);
  t.true(sse.endsWith('data: [DONE]\n\n'));
  t.is(await served.exited, 0);
});

test('bad flags are refused with a message and exit code 2', async (t) => {
  for (const args of [['--port', 'abc'], ['--tensor-parallel-size', '3'], ['--generation-config', 'nope'], ['--max-request-bytes', 'lots']]) {
    const child = spawn(process.execPath, [CLI, 'serve', generatedModel('tiny', 7), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve)); // stderr drained too
    t.is(code, 2, args.join(' '));
    t.regex(err, /^troupe serve: /, args.join(' '));
  }
});

test('resolveServeConfig: flags over the topology file over defaults, vLLM\'s names', (t) => {
  const dir = tempDir('topology');
  const topology = join(dir, 'single.yaml');
  writeFileSync(topology, 'tensor_parallel_size: 1\npipeline_parallel_size: 1\nplacement: local\nmemory: { kv_cache: 32MiB }\nserve: { port: 9001, max_model_len: 1024, served_model_name: from-file }\n');
  const model = generatedModel('tiny', 7);
  const fromFile = resolveServeConfig(model, { topology }, {});
  t.is(fromFile.port, 9001);
  t.is(fromFile.engine.maxModelLen, 1024);
  t.is(fromFile.engine.kvCacheMemory, '32MiB');
  t.deepEqual(fromFile.servedModelNames, ['from-file']);
  t.is(fromFile.host, '127.0.0.1');
  const flags = resolveServeConfig(model, { topology, port: '9002', maxModelLen: '512', apiKey: ['k'], seed: '3' }, {});
  t.is(flags.port, 9002);
  t.is(flags.engine.maxModelLen, 512);
  t.deepEqual(flags.apiKeys, ['k']);
  t.is(flags.seed, 3);
  t.deepEqual(resolveServeConfig(model, {}, { TROUPE_API_KEY: 'env-key' }).apiKeys, ['env-key']);
  t.deepEqual(resolveServeConfig(model, {}, {}).servedModelNames, [model], 'served under the directory as given, as vLLM does');
});
