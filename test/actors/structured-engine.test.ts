// Structured output through the whole engine on the generated tiny model:
// every schema of test/fixtures/structured/schemas.json (nested objects,
// arrays, enums, anyOf, string formats, bounded numbers) parses and validates
// with ajv, at temperature 0 and 1, beside unconstrained requests in the same
// batches; a constrained request's tokens are the same alone and in a batch,
// after preemption (its matcher kept with its tokens) and after a rank crash
// (the rebuilt scheduler replays its tokens into a new matcher); choice, regex and
// EBNF grammars; a bad grammar is refused with nothing left behind.
//
// xgrammar 0.1.27 bounds a JSON number by its integer part only ({"maximum": 1}
// allows 1.5), so the number bounds here are wide; integers are exact.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { Troupe, type TroupeOptions } from '../../actors/engine/troupe.js';
import type { GenerationParams } from '../../actors/engine/request-params.js';
import { generatedModel, randomTokens } from '../models/helpers.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const MODEL = generatedModel('tiny', 7);
const VOCAB = 128256;
export const SCHEMAS = JSON.parse(readFileSync(new URL('../../../test/fixtures/structured/schemas.json', import.meta.url), 'utf8')) as Record<string, Record<string, unknown>>;
const ajv = addFormats(new Ajv({ strict: false }));

async function engine(t: { teardown(fn: () => Promise<void> | void): void }, options: Partial<TroupeOptions> = {}) {
  const llm = await Troupe.start({ model: MODEL, kvCacheMemory: '16MiB', maxModelLen: 2048, threads: 1, log: () => {}, ...options });
  t.teardown(() => llm.shutdown());
  return llm;
}

/** Unconstrained requests to share the batches with. */
function noise(llm: Troupe, count: number, maxTokens = 24) {
  return Array.from({ length: count }, (_, i) => llm.generate([randomTokens(5 + i, VOCAB, 300 + i)], { maxTokens, temperature: 0.9, seed: i, ignoreEos: true }));
}

test('every schema: the output parses and validates, at temperature 0 and 1, in batches with unconstrained rows', async (t) => {
  const llm = await engine(t);
  for (const temperature of [0, 1]) {
    const others = noise(llm, 6, 40);
    const runs = Object.entries(SCHEMAS).map(async ([name, schema]) => {
      const results = await llm.generate([randomTokens(7, VOCAB, name.length), randomTokens(3, VOCAB, 99)], { maxTokens: 300, temperature, seed: 11, structuredOutput: { type: 'json_schema', schema } });
      for (const r of results) {
        const out = r.outputs[0]!;
        t.is(out.finishReason, 'stop', `${name} at temperature ${temperature}: ${out.text}`);
        const value = JSON.parse(out.text) as unknown;
        t.true(ajv.validate(schema, value), `${name} at temperature ${temperature}: ${out.text} ${ajv.errorsText()}`);
      }
    });
    await Promise.all([...runs, ...others]);
    for (const other of await Promise.all(others)) t.is(other[0]!.outputs[0]!.tokenIds.length, 40, 'the unconstrained rows ran to their length');
  }
  const usage = await llm.kvUsage();
  t.like(usage, { running: 0, waiting: 0 });
});

test('a constrained request gives the same tokens alone, in a batch with unconstrained rows, and after preemption', async (t) => {
  const params: GenerationParams = { maxTokens: 120, temperature: 1, topP: 0.95, seed: 77, structuredOutput: { type: 'json_schema', schema: SCHEMAS['nested']! } };
  const prompt = randomTokens(30, VOCAB, 5);
  const roomy = await engine(t);
  const [alone] = await roomy.generate([prompt], params);
  const crowd = noise(roomy, 12, 30);
  const [mixed] = await roomy.generate([prompt], params);
  await Promise.all(crowd);
  t.deepEqual(mixed!.outputs[0]!.tokenIds, alone!.outputs[0]!.tokenIds);
  t.true(ajv.validate(SCHEMAS['nested']!, JSON.parse(alone!.outputs[0]!.text)));

  const tight = await engine(t, { kvCacheMemory: 12 * 16 * 2 * 2 * 2 * 8 * 2, maxModelLen: 160, enablePrefixCaching: false });
  const pressure = Array.from({ length: 8 }, (_, i) => tight.generate([randomTokens(60, VOCAB, 40 + i)], { maxTokens: 40, temperature: 0, ignoreEos: true }));
  const [preempted] = await tight.generate([prompt], params);
  await Promise.all(pressure);
  t.true((await tight.kvUsage()).preemptions > 0, 'the pool was too small: requests were preempted');
  t.deepEqual(preempted!.outputs[0]!.tokenIds, alone!.outputs[0]!.tokenIds);
});

test('choice, regex and EBNF grammars; json_object; a grammar that completes ends the request with stop', async (t) => {
  const llm = await engine(t);
  const prompt = randomTokens(6, VOCAB, 8);
  for (const temperature of [0, 1]) {
    const [c] = await llm.generate([prompt], { maxTokens: 20, temperature, structuredOutput: { type: 'choice', choices: ['positive', 'negative', 'neutral'] } });
    t.true(['positive', 'negative', 'neutral'].includes(c!.outputs[0]!.text), c!.outputs[0]!.text);
    t.is(c!.outputs[0]!.finishReason, 'stop');
    const [r] = await llm.generate([prompt], { maxTokens: 40, temperature, structuredOutput: { type: 'regex', pattern: '[A-Z]{2}-[0-9]{3,4}' } });
    t.regex(r!.outputs[0]!.text, /^[A-Z]{2}-[0-9]{3,4}$/);
    const [g] = await llm.generate([prompt], { maxTokens: 40, temperature, structuredOutput: { type: 'grammar', grammar: 'root ::= "(" digit ("+" digit)* ")"\ndigit ::= [0-9]' } });
    t.regex(g!.outputs[0]!.text, /^\([0-9](\+[0-9])*\)$|^\([0-9](\+[0-9])*$/);
    // ignore_eos: the grammar's completion still ends the request
    const [e] = await llm.generate([prompt], { maxTokens: 30, temperature, ignoreEos: true, structuredOutput: { type: 'choice', choices: ['yes', 'no'] } });
    t.true(['yes', 'no'].includes(e!.outputs[0]!.text));
    t.is(e!.outputs[0]!.finishReason, 'stop');
  }
  const [j] = await llm.generate([prompt], { maxTokens: 8, temperature: 0, structuredOutput: { type: 'json_object' } });
  t.true(/^[[{"\-0-9tfn ]/.test(j!.outputs[0]!.text), `a JSON value starts: ${j!.outputs[0]!.text}`);
});

test('a bad schema, regex or grammar is refused by name; the engine serves the next request', async (t) => {
  const llm = await engine(t);
  const prompt = randomTokens(6, VOCAB, 9);
  await t.throwsAsync(llm.generate([prompt], { structuredOutput: { type: 'json_schema', schema: { type: 'bogus' } } }), { message: /invalid or unsupported JSON schema: .*bogus/ });
  await t.throwsAsync(llm.generate([prompt], { structuredOutput: { type: 'regex', pattern: '(ab' } }), { message: /invalid regular expression/ });
  await t.throwsAsync(llm.generate([prompt], { structuredOutput: { type: 'grammar', grammar: 'root ::= missing' } }), { message: /invalid grammar/ });
  await t.throwsAsync(llm.generate([prompt], { structuredOutput: { type: 'choice', choices: [] } }), { message: /choices must be a non-empty list/ });
  const [ok] = await llm.generate([prompt], { maxTokens: 100, temperature: 0, structuredOutput: { type: 'json_schema', schema: SCHEMAS['enums']! } });
  t.true(ajv.validate(SCHEMAS['enums']!, JSON.parse(ok!.outputs[0]!.text)));
  t.like(await llm.kvUsage(), { running: 0, waiting: 0, usage: 0 });
});

test('a rank crash mid-generation: the rebuilt scheduler replays each grammar, and the outputs are those of a healthy run', async (t) => {
  const params = (i: number): GenerationParams => ({ maxTokens: 120, temperature: 1, seed: 20 + i, structuredOutput: { type: 'json_schema', schema: Object.values(SCHEMAS)[i % 6]! } });
  const prompts = Array.from({ length: 6 }, (_, i) => randomTokens(8, VOCAB, 60 + i));
  const healthy = await engine(t);
  const expected = await Promise.all(prompts.map((p, i) => healthy.generate([p], params(i))));
  const dir = mkdtempSync(join(tmpdir(), 'troupe-grammar-fault-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const onceFile = join(dir, 'crashed');
  const faulty = await engine(t, { faults: { crashAtStep: 8, onceFile } });
  const got = await Promise.all(prompts.map((p, i) => faulty.generate([p], params(i))));
  t.true(existsSync(onceFile), 'the fault was injected');
  for (let i = 0; i < prompts.length; i++) {
    t.deepEqual(got[i]![0]!.outputs[0]!.tokenIds, expected[i]![0]!.outputs[0]!.tokenIds, `request ${i}`);
    t.true(ajv.validate(Object.values(SCHEMAS)[i % 6]!, JSON.parse(got[i]![0]!.outputs[0]!.text)));
  }
});
