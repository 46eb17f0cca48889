// Admission compiles a request's grammar once, beside validation and
// tokenization, with the real grammar engine: a well-formed spec is compiled
// and cached (the scheduler's matchers then find it), a spec that does not
// compile is a typed invalid_grammar refusal naming structuredOutput, a
// malformed one an invalid_params refusal before the prompt is tokenized.
import test from 'ava';
import { admit, type CompileGrammar, type Tokenize } from '../../actors/front/admission.js';
import type { EngineError } from '../../actors/front/protocol.js';
import { GrammarEngine } from '../../actors/grammar/grammar-engine.js';
import type { GrammarSpec } from '../../actors/grammar/grammar-spec.js';
import { Vocabulary } from '../../actors/tokenizer/vocabulary.js';
import { generatedModel } from '../models/helpers.js';

const limits = { vocabSize: 128256, maxModelLen: 64 };
const enginePromise = GrammarEngine.create(Vocabulary.load(generatedModel('tiny', 7)), { vocabSize: 128256, stopTokenIds: [128001, 128009] });
const compile: CompileGrammar = async (spec, field) => {
  await (await enginePromise).compile(spec, field);
};
let tokenized = 0;
const tokenize: Tokenize = async () => {
  tokenized++;
  return { ok: true, promptTokenIds: [1, 2, 3], prompt: 'hi' };
};
const submit = (structuredOutput: unknown) => admit({ requestId: 'r', prompt: { kind: 'text', text: 'hi' }, params: { structuredOutput: structuredOutput as GrammarSpec, maxTokens: 5 } }, limits, tokenize, compile);

test.serial('a grammar is compiled at admission and cached for the scheduler; its spec travels in every choice\'s params', async (t) => {
  const spec: GrammarSpec = { type: 'json_schema', schema: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] } };
  const engine = await enginePromise;
  t.is(engine.cached(spec), undefined);
  const admitted = await submit(spec);
  if ('code' in admitted) return t.fail(admitted.message);
  t.truthy(engine.cached(spec), 'compiled once, at admission');
  t.deepEqual(admitted.choices[0]!.params.structuredOutput, spec);
});

test.serial('a grammar that does not compile is invalid_grammar naming structuredOutput; a malformed spec is invalid_params, refused before tokenizing', async (t) => {
  const before = tokenized;
  t.like(await submit({ type: 'regex', pattern: '(ab' }) as EngineError, { code: 'invalid_grammar', field: 'structuredOutput' });
  t.regex((await submit({ type: 'regex', pattern: '(ab' }) as EngineError).message, /^structuredOutput: invalid regular expression/);
  t.like(await submit({ type: 'json_schema', schema: { type: 'bogus' } }) as EngineError, { code: 'invalid_grammar', field: 'structuredOutput' });
  t.like(await submit({ type: 'grammar', grammar: 'root ::= missing' }) as EngineError, { code: 'invalid_grammar', field: 'structuredOutput' });
  const malformed = await submit({ type: 'choice', choices: [] }) as EngineError;
  t.like(malformed, { code: 'invalid_params', field: 'structuredOutput' });
  t.regex(malformed.message, /^structuredOutput: choices must be a non-empty list/);
  t.is(tokenized - before, 4, 'the grammar is compiled after the prompt is tokenized (the cheaper checks first); a malformed spec never reaches the tokenizer');
});

test('without a grammar compiler a structured request is refused, never admitted unchecked', async (t) => {
  const refused = await admit({ requestId: 'r', prompt: { kind: 'text', text: 'hi' }, params: { structuredOutput: { type: 'json_object' }, maxTokens: 5 } }, limits, tokenize) as EngineError;
  t.is(refused.code, 'internal');
  t.regex(refused.message, /no grammar compiler/);
});
