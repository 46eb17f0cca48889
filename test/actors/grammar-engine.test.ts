// The grammar engine without transport: tokenizer info from the real Llama 3.1
// vocabulary, grammars per spec (cached), matchers that accept, mask, replay;
// bad specs are errors naming the field and leave the engine usable.
import test from 'ava';
import { GrammarEngine } from '../../actors/grammar/grammar-engine.js';
import { GrammarSpecError, validateGrammarSpec, type GrammarSpec } from '../../actors/grammar/grammar-spec.js';
import type { SequenceGrammar } from '../../actors/grammar/sequence-grammar.js';
import { Vocabulary } from '../../actors/tokenizer/vocabulary.js';
import { generatedModel } from '../models/helpers.js';
import { allowedIds } from './mask-ids.js';

const EOS = [128001, 128008, 128009];
const modelDir = generatedModel('tiny', 7);
const vocab = Vocabulary.load(modelDir);
const enginePromise = GrammarEngine.create(vocab, { vocabSize: 128256, stopTokenIds: EOS });

const allowed = (mask: Uint32Array, id: number) => ((mask[id >>> 5]! >>> (id & 31)) & 1) === 1;
const text = (ids: number[]) => vocab.decode(ids, true);

/** Walks the grammar greedily by lowest allowed id that is not a stop token, else stops. */
function walk(m: SequenceGrammar, prefer: (allowedIds: number[]) => number, limit = 200): number[] {
  const out: number[] = [];
  for (let i = 0; i < limit && !m.terminated; i++) {
    const mask = m.nextMask();
    const next = prefer(allowedIds(mask));
    if (!m.accept(next)) throw new Error(`the matcher refused token ${next} that its own mask allowed`);
    out.push(next);
  }
  return out;
}

test('a JSON-schema grammar masks every token that cannot continue, and ends with a stop token only', async (t) => {
  const engine = await enginePromise;
  const spec: GrammarSpec = { type: 'json_schema', schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } };
  const m = engine.matcher(await engine.compile(spec));
  const first = m.nextMask();
  t.is(first.length, Math.ceil(128256 / 32));
  t.true(allowed(first, vocab.tokenToId('{')!));
  t.false(allowed(first, vocab.tokenToId('[')!));
  t.false(EOS.some((e) => allowed(first, e)), 'nothing may stop an incomplete document');
  // the longest allowed token first, never a stop token until only stop tokens remain
  const ids = walk(m, (list) => {
    const nonStop = list.filter((id) => !EOS.includes(id));
    if (nonStop.length === 0) return list[0]!;
    return nonStop.sort((a, b) => vocab.tokenBytes(b).length - vocab.tokenBytes(a).length || a - b)[0]!;
  });
  t.true(m.terminated);
  t.true(EOS.includes(ids[ids.length - 1]!));
  t.deepEqual(JSON.parse(text(ids.slice(0, -1))), { ok: JSON.parse(text(ids.slice(0, -1))).ok });
  t.is(typeof JSON.parse(text(ids.slice(0, -1))).ok, 'boolean');
  m.dispose();
});

test('replay resets and accepts the tokens so far: the same mask as the matcher that took them one by one', async (t) => {
  const engine = await enginePromise;
  const compiled = await engine.compile({ type: 'choice', choices: ['alpha', 'beta gamma'] });
  const a = engine.matcher(compiled);
  const tokens = walk(a, (list) => list[list.length - 1]!, 3).filter((x) => !EOS.includes(x));
  const b = engine.matcher(compiled);
  b.accept(vocab.tokenToId('beta') ?? 0); // some other state first
  t.true(b.replay(tokens));
  const fresh = engine.matcher(compiled);
  for (const x of tokens) fresh.accept(x);
  t.deepEqual(b.nextMask(), fresh.nextMask());
  t.false(b.replay([vocab.tokenToId('zzz') ?? 89]), 'a token outside the grammar is refused');
  for (const m of [a, b, fresh]) m.dispose();
});

test('choice and regex grammars allow exactly their language', async (t) => {
  const engine = await enginePromise;
  const choice = engine.matcher(await engine.compile({ type: 'choice', choices: ['yes', 'no'] }));
  const out = text(walk(choice, (list) => list[0]!).filter((x) => !EOS.includes(x)));
  t.true(['yes', 'no'].includes(out), out);
  const regex = engine.matcher(await engine.compile({ type: 'regex', pattern: '[0-9]{3}-[a-z]{2}' }));
  const r = text(walk(regex, (list) => list[Math.floor(list.length / 2)]!).filter((x) => !EOS.includes(x)));
  t.regex(r, /^[0-9]{3}-[a-z]{2}$/);
});

test('compiled grammars are cached by spec', async (t) => {
  const engine = await enginePromise;
  const spec: GrammarSpec = { type: 'json_schema', schema: { type: 'array', items: { type: 'integer' }, maxItems: 3 } };
  const first = await engine.compile(spec);
  t.is(await engine.compile({ type: 'json_schema', schema: { type: 'array', items: { type: 'integer' }, maxItems: 3 } }), first);
  t.is(engine.cached(spec), first);
});

test('a bad schema, regex or grammar is an error naming the field, and the engine keeps working after many', async (t) => {
  const engine = await enginePromise;
  for (let i = 0; i < 5; i++) {
    const e1 = await t.throwsAsync(engine.compile({ type: 'json_schema', schema: { type: `nonsense${i}` } }, 'response_format.json_schema.schema'), { instanceOf: GrammarSpecError });
    t.regex(e1!.message, /^response_format\.json_schema\.schema: invalid or unsupported JSON schema: .*nonsense/);
    const e2 = await t.throwsAsync(engine.compile({ type: 'regex', pattern: `[a-z${i}` }, 'structured_outputs.regex'), { instanceOf: GrammarSpecError });
    t.regex(e2!.message, /^structured_outputs\.regex: invalid regular expression: .*/);
    const e3 = await t.throwsAsync(engine.compile({ type: 'grammar', grammar: `root ::= "a" | ${i}` }, 'guided_grammar'), { instanceOf: GrammarSpecError });
    t.regex(e3!.message, /^guided_grammar: invalid grammar/);
  }
  const ok = engine.matcher(await engine.compile({ type: 'json_schema', schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } }));
  t.true(allowed(ok.nextMask(), vocab.tokenToId('{')!));
});

test('validateGrammarSpec names what is wrong', (t) => {
  t.throws(() => validateGrammarSpec({ type: 'choice', choices: [] }, 'guided_choice'), { message: /^guided_choice: choices must be a non-empty list/ });
  t.throws(() => validateGrammarSpec({ type: 'xml' }), { message: /type must be json_object, json_schema, regex, choice or grammar/ });
  t.notThrows(() => validateGrammarSpec({ type: 'json_schema', schema: true }));
});

test('JSON strings never hold a raw control character or, from a pattern, a raw quote: bounded, patterned and plain strings alike', async (t) => {
  const engine = await enginePromise;
  const byBytes = new Map<string, number>();
  for (let id = 0; id < vocab.size; id++) {
    if (vocab.has(id) && !vocab.isSpecial(id)) byBytes.set(Buffer.from(vocab.tokenBytes(id)).toString('latin1'), id);
  }
  const controlTokens: number[] = [];
  for (const [bytes, id] of byBytes) if ([...bytes].some((c) => c.charCodeAt(0) < 0x20)) controlTokens.push(id);
  t.true(controlTokens.length > 100, `${controlTokens.length} tokens hold a control byte`);
  const open = ['{"', 'a', '":', ' "'].map((s) => byBytes.get(s)!);
  for (const a of [{ type: 'string' }, { type: 'string', maxLength: 8 }, { type: 'string', minLength: 2 }, { type: 'string', pattern: '^.*$' }, { type: 'string', pattern: '^\\s[^b]$' }]) {
    const m = engine.matcher(await engine.compile({ type: 'json_schema', schema: { type: 'object', properties: { a }, required: ['a'] } }));
    t.true(m.replay(open), JSON.stringify(a));
    const mask = m.nextMask();
    t.deepEqual(controlTokens.filter((id) => allowed(mask, id)), [], `${JSON.stringify(a)}: no token with a control byte`);
    t.true(allowed(mask, byBytes.get('x')!) || allowed(mask, byBytes.get(' ')!), `${JSON.stringify(a)}: text continues`);
    if (a.pattern === '^.*$') {
      t.true(allowed(mask, byBytes.get('"')!), 'the closing quote ends the string');
      // a quote can only close the string: in {"a": "..."} what follows it is "}" (or the token ends)
      const afterQuote = [...byBytes].filter(([bytes, id]) => bytes.includes('"') && allowed(mask, id)).map(([bytes]) => bytes.slice(bytes.indexOf('"') + 1));
      t.true(afterQuote.length > 0);
      t.deepEqual(afterQuote.filter((rest) => rest !== '' && !rest.startsWith('}')), [], 'no raw quote inside the string');
    }
    m.dispose();
  }
});
