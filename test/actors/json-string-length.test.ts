// Length-bounded JSON strings built by Troupe (json-string-length.ts): they
// admit exactly the strings the bounds allow (code points, as ajv counts
// them), and every mask along random walks equals the mask of xgrammar's own
// grammar for the schema, so only the time to compute a mask changes.
import test from 'ava';
import { Ajv } from 'ajv';
import { GrammarEngine } from '../../actors/grammar/grammar-engine.js';
import { jsonStringSafeEbnf } from '../../actors/grammar/json-string-chars.js';
import { JSON_STRING_END_LOOKAHEAD, stringLengthEbnf } from '../../actors/grammar/json-string-length.js';
import type { SequenceGrammar } from '../../actors/grammar/sequence-grammar.js';
import { loadXgrammar } from '../../actors/grammar/xgrammar.js';
import { Vocabulary } from '../../actors/tokenizer/vocabulary.js';
import { generatedModel } from '../models/helpers.js';
import { allowedIds } from './mask-ids.js';

const ajv = new Ajv({ strict: false });
const vocab = Vocabulary.load(generatedModel('tiny', 7));
const enginePromise = GrammarEngine.create(vocab, { vocabSize: 128256, stopTokenIds: [128001, 128008, 128009] });
const byteToken = new Map<number, number>();
for (let id = 0; id < vocab.size; id++) {
  if (!vocab.has(id) || vocab.isSpecial(id)) continue;
  const bytes = vocab.tokenBytes(id);
  if (bytes.length === 1) byteToken.set(bytes[0]!, id);
}
const xgrammar = loadXgrammar();

/** xgrammar's own grammar of the schema (the separators the engine asks for), strings made JSON-safe. */
async function xgrammarEbnf(schema: unknown): Promise<string> {
  const grammar = await xgrammar.module.Grammar.fromJSONSchema(JSON.stringify(schema), false, -1);
  try {
    return jsonStringSafeEbnf(grammar.toString());
  } finally {
    grammar.dispose();
  }
}

/** Whether the matcher admits `text` as a whole document, fed one byte per token. */
function admits(m: SequenceGrammar, text: string): boolean {
  m.replay([]);
  for (const b of Buffer.from(text, 'utf8')) if (!m.accept(byteToken.get(b)!)) return false;
  return m.accept(128009) && m.terminated;
}

test('strings of min to max code points are admitted exactly, multi-byte ones counted as one', async (t) => {
  const engine = await enginePromise;
  for (const [minLength, maxLength] of [[0, 0], [0, 3], [2, 2], [1, 4]] as const) {
    const schema = { type: 'object', properties: { s: { type: 'string', minLength, maxLength } }, required: ['s'], additionalProperties: false };
    const m = engine.matcher(await engine.compile({ type: 'json_schema', schema }));
    for (const s of ['', 'a', 'ab', 'abc', 'abcd', 'abcde', 'é', 'éé日', '日本語x', 'a\\n', 'a"b']) {
      const doc = `{"s": "${s}"}`; // s as written: an escape or a raw quote is never admitted
      let valid: boolean;
      try {
        valid = ajv.validate(schema, JSON.parse(doc)) && !/[\\"]/.test(s);
      } catch {
        valid = false;
      }
      t.is(admits(m, doc), valid, `[${minLength}, ${maxLength}] ${doc}`);
    }
    m.dispose();
  }
  const root = engine.matcher(await engine.compile({ type: 'json_schema', schema: { type: 'string', maxLength: 2 } }));
  t.true(admits(root, '"ab"'), 'a bounded string at the root ends the document');
  t.false(admits(root, '"abc"'));
  root.dispose();
});

test('every mask along random walks equals the mask of xgrammar\'s own grammar for the schema', async (t) => {
  const engine = await enginePromise;
  const schemas: Record<string, unknown>[] = [
    {
      type: 'object',
      properties: {
        user: { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 6 }, tags: { type: 'array', items: { type: 'string', maxLength: 3 }, maxItems: 3 } }, required: ['name', 'tags'], additionalProperties: false },
        note: { anyOf: [{ type: 'string', maxLength: 4 }, { type: 'null' }] },
        active: { type: 'boolean' },
      },
      required: ['user', 'note', 'active'],
      additionalProperties: false,
    },
    { type: 'string', minLength: 2, maxLength: 5 },
  ];
  let seed = 11;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (const schema of schemas) {
    const ours = engine.matcher(await engine.compile({ type: 'json_schema', schema }));
    const theirs = engine.matcher(await engine.compile({ type: 'grammar', grammar: await xgrammarEbnf(schema) }));
    let compared = 0;
    let documents = 0;
    for (let walk = 0; walk < 30; walk++) {
      ours.replay([]);
      theirs.replay([]);
      const ids: number[] = [];
      while (!ours.terminated && ids.length < 80) {
        const mine = ours.nextMask();
        const want = theirs.nextMask();
        if (!mine.every((w, i) => w === want[i])) {
          t.fail(`masks differ after ${JSON.stringify(vocab.decode(ids, false))}`);
          return;
        }
        compared++;
        const allowed = allowedIds(mine);
        const id = allowed[Math.floor(random() * allowed.length)]!;
        t.true(ours.accept(id) && theirs.accept(id));
        ids.push(id);
      }
      if (ours.terminated) {
        documents++;
        const doc = vocab.decode(ids, true);
        t.true(ajv.validate(schema, JSON.parse(doc)), doc);
      }
    }
    t.true(compared > 100 && documents > 0, `${compared} masks compared, ${documents} documents`);
    ours.dispose();
    theirs.dispose();
  }
});

test('the rules: the closing quote inside each optional step, each ending with JSON\'s string lookahead (as xgrammar\'s own strings)', async (t) => {
  const printed = await xgrammarEbnf({ type: 'object', properties: { s: { type: 'string' } } });
  t.true(printed.includes(`basic_string_sub ::= `) && printed.split('\n').some((line) => line.startsWith('basic_string_sub') && line.endsWith(JSON_STRING_END_LOOKAHEAD)), 'xgrammar ends its strings with the same lookahead');
  const { rule, definitions } = stringLengthEbnf(1, 3, 'r');
  t.is(rule, '("\\"" [^\\0-\\x1f\\"\\\\] r_1)');
  t.deepEqual(definitions, [
    `r_1 ::= (("\\"") | ([^\\0-\\x1f\\"\\\\] r_2)) ${JSON_STRING_END_LOOKAHEAD}`,
    `r_2 ::= (("\\"") | ([^\\0-\\x1f\\"\\\\] "\\"")) ${JSON_STRING_END_LOOKAHEAD}`,
  ]);
  t.deepEqual(stringLengthEbnf(2, 2, 'r'), { rule: '("\\"" [^\\0-\\x1f\\"\\\\] [^\\0-\\x1f\\"\\\\] "\\"")', definitions: [] });
});
