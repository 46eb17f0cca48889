// vLLM flags in launch scripts: harmless ones start the server with one
// warning each naming what Troupe does instead; ones Troupe cannot honour
// safely exit 2 with a message.
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolveServeConfig } from '../../cli/serve-command.js';
import { VLLM_COMPAT_FLAGS, vllmFlagNotices } from '../../cli/vllm-flags.js';
import { generatedModel } from '../models/helpers.js';

const CLI = fileURLToPath(new URL('../../cli/troupe.js', import.meta.url));

test('each harmless flag earns one warning naming what Troupe does instead', (t) => {
  const model = generatedModel('tiny', 7);
  const config = resolveServeConfig(model, {
    gpuMemoryUtilization: '0.9', swapSpace: '4', trustRemoteCode: true, enforceEager: true, disableCustomAllReduce: true,
    uvicornLogLevel: 'warning', disableLogRequests: true, tokenizerMode: 'auto', loadFormat: 'safetensors', tokenizer: model,
  } as Record<string, unknown>, {});
  t.is(config.vllmFlagWarnings.length, 10);
  const byFlag = (flag: string) => config.vllmFlagWarnings.find((w) => w.startsWith(`${flag} `)) ?? '';
  t.regex(byFlag('--gpu-memory-utilization'), /--kv-cache-memory/);
  t.regex(byFlag('--swap-space'), /recomputed/);
  t.regex(byFlag('--trust-remote-code'), /no code from the model directory is ever executed/);
  t.regex(byFlag('--uvicorn-log-level'), /--log-level/);
  t.regex(byFlag('--disable-log-requests'), /--enable-log-requests/);
  t.deepEqual(resolveServeConfig(model, {}, {}).vllmFlagWarnings, []);
});

test('flags that cannot be honoured safely are refused', (t) => {
  const model = generatedModel('tiny', 7);
  for (const [flags, message] of [
    [{ sslKeyfile: 'key.pem' }, /--ssl-keyfile is not supported: Troupe serves plain HTTP/],
    [{ loadFormat: 'gguf' }, /--load-format gguf is not supported/],
    [{ tokenizerMode: 'mistral' }, /--tokenizer-mode mistral is not supported/],
    [{ tokenizer: '/elsewhere' }, /--tokenizer \/elsewhere is not supported/],
    [{ enableLora: true }, /--enable-lora is not supported/],
    [{ dataParallelSize: '2' }, /--data-parallel-size 2 is not supported/],
    [{ device: 'cuda' }, /--device cuda is not supported/],
  ] as const) {
    t.throws(() => resolveServeConfig(model, flags as Record<string, unknown>, {}), { message }, JSON.stringify(flags));
  }
  t.is(vllmFlagNotices({ device: 'cpu' }, model).refusals.length, 0);
});

test('every compatibility flag has a check that says something', (t) => {
  for (const compat of VLLM_COMPAT_FLAGS) {
    const value = compat.flag.includes('<') ? 'x' : true;
    t.not(compat.check(value, 'model'), null, compat.flag);
  }
});

function run(args: string[], until: RegExp): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'serve', generatedModel('tiny', 7), '--port', '0', '--threads', '1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stopping = false;
    const onData = (data: Buffer) => {
      output += data.toString();
      if (!stopping && until.test(output)) {
        stopping = true;
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

test('troupe serve starts with harmless vLLM flags, warning once each', async (t) => {
  const { code, output } = await run(['--gpu-memory-utilization', '0.85', '--swap-space', '8', '--trust-remote-code', '--enforce-eager', '--disable-log-requests', '--uvicorn-log-level', 'info'], /OpenAI API on/);
  t.regex(output, /OpenAI API on http:\/\/127\.0\.0\.1:\d+\/v1/);
  for (const flag of ['--gpu-memory-utilization', '--swap-space', '--trust-remote-code', '--enforce-eager', '--disable-log-requests', '--uvicorn-log-level']) {
    t.is(output.split(`WARN `).filter((line) => line.includes(`[troupe] ${flag} is accepted for vLLM compatibility`)).length, 1, flag);
  }
  t.is(code, 0);
});

test('troupe serve exits 2 on a flag it cannot honour', async (t) => {
  const { code, output } = await run(['--ssl-certfile', 'cert.pem'], /OpenAI API on/);
  t.is(code, 2);
  t.regex(output, /^troupe serve: --ssl-certfile is not supported/m);
});
