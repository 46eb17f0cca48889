// `troupe serve --enable-auto-tool-choice --tool-call-parser llama3_json`, as
// vLLM spells them: mapped into the gateway's tool-call options; a parser
// Troupe lacks, or auto tool choice without a parser, exits 2 with a message.
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolveServeConfig } from '../../cli/serve-command.js';
import { generatedModel } from '../models/helpers.js';

const CLI = fileURLToPath(new URL('../../cli/troupe.js', import.meta.url));

test('the flags become the tool-call options; off by default', (t) => {
  const model = generatedModel('tiny', 7);
  t.deepEqual(resolveServeConfig(model, {}, {}).toolCalls, { enableAutoToolChoice: false, toolCallParser: null });
  t.deepEqual(resolveServeConfig(model, { enableAutoToolChoice: true, toolCallParser: 'llama3_json' }, {}).toolCalls, { enableAutoToolChoice: true, toolCallParser: 'llama3_json' });
  t.throws(() => resolveServeConfig(model, { enableAutoToolChoice: true }, {}), { message: /--enable-auto-tool-choice needs --tool-call-parser/ });
  t.throws(() => resolveServeConfig(model, { toolCallParser: 'hermes' }, {}), { message: /--tool-call-parser hermes: Troupe has llama3_json/ });
});

test('troupe serve refuses a parser it does not have with exit code 2, naming the flag', async (t) => {
  const child = spawn(process.execPath, [CLI, 'serve', generatedModel('tiny', 7), '--enable-auto-tool-choice', '--tool-call-parser', 'mistral'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve)); // stderr drained too
  t.is(code, 2);
  t.regex(err, /^troupe serve: --tool-call-parser mistral: Troupe has llama3_json/);
});
