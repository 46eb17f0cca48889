// SLOW (minutes: npm install from the registry, or its local cache, and a full
// build of the native addon), so it runs only under `npm run test:pack`
// (TROUPE_TEST_PACK=1, also run by .ci/run) and is reported as skipped by `npm test`.
//
// The package as a new user gets it: `npm pack` of this checkout, the tarball
// installed globally into a scratch prefix with no TypeScript compiler on PATH
// (its install step must build only the addons, from the shipped native/ sources),
// then `<prefix>/bin/troupe --help` and `troupe serve` on the embedded default
// model answering /health and a completion, and `troupe bench serve` against it
// (the serving benchmark ships in dist/).
import test from 'ava';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The checkout's root (this file runs compiled as dist-test/test/packaging/). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const packTest = process.env['TROUPE_TEST_PACK'] === '1' ? test : test.skip;

/** PATH without any node_modules/.bin, so the checkout's devDependencies (tsc) are not reachable. */
function pathWithoutLocalBins(path: string | undefined): string {
  return (path ?? '').split(delimiter).filter((p) => !p.includes('node_modules/.bin')).join(delimiter);
}

/** The environment the packed package runs in: no npm_* variables of the `npm run` that started this test. */
function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toLowerCase().startsWith('npm_')) env[k] = v;
  return { ...env, PATH: pathWithoutLocalBins(process.env['PATH']), ...extra };
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): string {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** Starts `troupe serve` on a free port; resolves with its base URL once it prints its address. */
function serve(bin: string, env: NodeJS.ProcessEnv): { child: ChildProcess; url: Promise<string>; output: () => string } {
  const child = spawn(bin, ['serve', '--host', '127.0.0.1', '--port', '0', '--threads', '1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = new Promise<string>((resolve, reject) => {
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = /OpenAI API on (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`troupe serve exited (${code}) before listening:\n${output}`)));
  });
  return { child, url, output: () => output };
}

packTest('SLOW (npm run test:pack): the packed tarball installs into a scratch prefix, builds its addon, and its `troupe` runs --help and serves the default model', async (t) => {
  t.timeout(20 * 60_000);
  const scratch = mkdtempSync(join(tmpdir(), 'troupe-pack-'));
  let server: ChildProcess | undefined;
  t.teardown(() => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    rmSync(scratch, { recursive: true, force: true });
  });
  const prefix = join(scratch, 'prefix');
  const env = cleanEnv({ XDG_CACHE_HOME: join(scratch, 'cache') });

  // npm pack runs `prepare` (the production TypeScript build) with the checkout's own PATH.
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', scratch], ROOT, process.env)) as { filename: string; files: { path: string }[] }[];
  const tarball = join(scratch, packed[0]!.filename);
  const files = packed[0]!.files.map((f) => f.path);
  t.true(files.includes('dist/cli/troupe.js'), 'the compiled command line is packed');
  t.true(files.includes('native/CMakeLists.txt') && files.includes('native/src/bindings/addon.cc'), 'the addon sources are packed');
  t.true(files.some((f) => f.startsWith('models/demo/troupe-demo-36m/')), 'the embedded default model is packed');
  t.true(files.includes('dist/cli/bench-serve-command.js') && files.includes('dist/bench/serving/run.js'), 'the serving benchmark is packed');
  t.deepEqual(files.filter((f) => f.startsWith('dist/test/') || f.endsWith('.bench.js') || (f.endsWith('.ts') && !f.endsWith('.d.ts'))), [], 'no tests, benchmark entry points or TypeScript sources');

  run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], scratch, env);
  const installed = join(prefix, 'lib', 'node_modules', 'troupe');
  t.true(existsSync(join(installed, 'native', 'build', 'Release', 'troupe_native.node')), 'the install step built the addon');
  t.true(existsSync(join(installed, 'native', 'build', 'Release', 'troupe_probes.node')), 'and the probes addon beside it');
  t.false(readdirSync(join(installed, 'dist')).includes('test'), 'the installed dist/ holds no tests');

  const bin = join(prefix, 'bin', 'troupe');
  const help = run(bin, ['--help'], scratch, env);
  t.regex(help, /Usage: troupe/);
  t.regex(help, /\bserve\b/);

  const served = serve(bin, env);
  server = served.child;
  const url = await served.url;
  t.regex(served.output(), /the embedded default/);
  t.is((await fetch(`${url}/health`)).status, 200);
  const response = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'troupe-demo-36m', prompt: 'In the beginning', max_tokens: 8, temperature: 0, ignore_eos: true }),
  });
  t.is(response.status, 200);
  const body = (await response.json()) as { choices: { text: string; finish_reason: string }[]; usage: { completion_tokens: number } };
  t.is(body.usage.completion_tokens, 8);
  t.is(body.choices[0]!.finish_reason, 'length');
  t.true(body.choices[0]!.text.trim().length > 0, `the completion has text: ${JSON.stringify(body.choices[0]!.text)}`);

  // (asynchronous: the server's output pipes must keep draining meanwhile)
  const { stdout: benchOut } = await promisify(execFile)(bin, ['bench', 'serve', '--base-url', url, '--num-prompts', '2', '--input-len', '16', '--output-len', '4',
    '--ignore-eos', '--json', '--no-progress', '--no-record'], { cwd: scratch, env, maxBuffer: 16 * 1024 * 1024 });
  const bench = JSON.parse(benchOut) as { completed: number; failed: number };
  t.is(bench.completed, 2, 'troupe bench serve ran from the installed package');
  t.is(bench.failed, 0);

  const exited = new Promise<number | null>((resolve) => server!.on('exit', (code) => resolve(code)));
  server.kill('SIGTERM');
  t.is(await exited, 0, 'troupe serve exits 0 on SIGTERM');
});
