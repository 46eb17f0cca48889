// The Tokenizer class on the real Llama 3.1 tokenizer: encode / decode round
// trips, BOS handling, special tokens, the chat template (the package's and
// Meta's Llama 3.1 Instruct one through --chat-template), and load errors.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { strftime } from '../../actors/tokenizer/chat-template.js';
import { ChatTemplateError, TokenizerLoadError } from '../../actors/tokenizer/errors.js';
import { Tokenizer } from '../../actors/tokenizer/tokenizer.js';
import { BOS, EOT, LLAMA31_TEMPLATE_FILE, llamaTokenizer, makeTokenizerDir } from './tokenizer-fixture.js';

const TEXTS = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  'Llamas 🦙 and alpacas 🦙🦙 live in the Andes 🏔️.',
  '你好，世界！日本語のテキストも。한국어도 됩니다.',
  'Family: 👩‍👩‍👧‍👦, flags: 🇫🇷🇯🇵, skin tone: 👍🏽, math: 𝔸 ∑ ℝ',
  'naïve café — “quotes” and e\u0301 (combining accent)',
  '  leading spaces,\ttabs,\r\nCRLF and\n\n\nblank lines  ',
  "I'M SURE we'll see they've done it; don't worry, it's 12345678 or 3.14159.",
  'def f(x):\n    return {"a": [1, 2, 3]}  # code\n',
  '\uFEFFbyte order mark first',
];

test('encode / decode round-trips real text, emoji and CJK included', (t) => {
  const tok = llamaTokenizer();
  for (const text of TEXTS) {
    const ids = tok.encode(text, { addSpecialTokens: false });
    t.true(ids.length > 0);
    t.is(tok.decode(ids), text, JSON.stringify(text));
    t.is(tok.decode(tok.encode(text), { skipSpecialTokens: true }), text);
  }
});

test('known Llama 3 token ids', (t) => {
  const tok = llamaTokenizer();
  t.deepEqual(tok.encode('Hello world', { addSpecialTokens: false }), [9906, 1917]);
  t.deepEqual(tok.encode('<|eot_id|>', { addSpecialTokens: false }), [EOT]);
  t.is(tok.tokenToId('ĠHello'), 22691);
  t.is(tok.idToToken(9906), 'Hello');
  t.is(tok.idToToken(1917), 'Ġworld');
  t.is(tok.idToToken(BOS), '<|begin_of_text|>');
  t.is(tok.idToToken(999_999), undefined);
  t.is(tok.vocabSize, 128256);
  t.is(tok.bosTokenId, BOS);
  t.is(tok.eosTokenId, EOT);
  t.is(tok.specialTokenIds.length, 256);
  t.true(tok.specialTokenIds.includes(BOS) && tok.specialTokenIds.includes(EOT));
  t.false(tok.specialTokenIds.includes(9906));
});

test('BOS is added once with addSpecialTokens, never twice', (t) => {
  const tok = llamaTokenizer();
  t.deepEqual(tok.encode('Hello world'), [BOS, 9906, 1917]);
  t.deepEqual(tok.encode('Hello world', { addSpecialTokens: true }), [BOS, 9906, 1917]);
  t.deepEqual(tok.encode('Hello world', { addSpecialTokens: false }), [9906, 1917]);
  // Text that already starts with <|begin_of_text|> (a rendered chat template) keeps its one BOS.
  t.deepEqual(tok.encode('<|begin_of_text|>Hello world', { addSpecialTokens: true }), [BOS, 9906, 1917]);
  t.deepEqual(tok.encode('<|begin_of_text|>Hello world', { addSpecialTokens: false }), [BOS, 9906, 1917]);
});

test('decode keeps special tokens unless asked to skip them; unknown ids decode to nothing', (t) => {
  const tok = llamaTokenizer();
  const ids = [BOS, 9906, 1917, EOT];
  t.is(tok.decode(ids), '<|begin_of_text|>Hello world<|eot_id|>');
  t.is(tok.decode(ids, { skipSpecialTokens: true }), 'Hello world');
  t.is(tok.decode([9906, 500_000, 1917]), 'Hello world');
});

test('single tokens of an emoji are partial UTF-8 and decode to U+FFFD alone', (t) => {
  const tok = llamaTokenizer();
  const ids = tok.encode('🦙', { addSpecialTokens: false });
  t.true(ids.length > 1);
  for (const id of ids) t.true(tok.decode([id]).includes('\uFFFD'));
  t.is(tok.decode(ids), '🦙');
});

const SYSTEM_USER = [
  { role: 'system' as const, content: 'You are a helpful assistant.' },
  { role: 'user' as const, content: 'What is 2+2?' },
];

test("the model's own chat template (tokenizer_config.json) renders a system + user conversation", (t) => {
  const tok = llamaTokenizer();
  // Llama 3's template: BOS on the first message; each message is a header, a blank line, the trimmed content, <|eot_id|>.
  const expected =
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n';
  t.is(tok.applyChatTemplate(SYSTEM_USER, { addGenerationPrompt: true }), expected);
  t.is(tok.applyChatTemplate(SYSTEM_USER, { addGenerationPrompt: false }), expected.slice(0, -'<|start_header_id|>assistant<|end_header_id|>\n\n'.length));
});

test('the Llama 3.1 Instruct template (--chat-template FILE) gives the exact Llama 3.1 string', (t) => {
  const tok = llamaTokenizer({ chatTemplate: LLAMA31_TEMPLATE_FILE });
  // Llama 3.1: the system block always comes first, with the knowledge cutoff and
  // date_string (HF passes none, so the template's "26 Jul 2024"), then the system message.
  const expected =
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n' +
    'Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n' +
    'You are a helpful assistant.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n';
  t.is(tok.applyChatTemplate(SYSTEM_USER), expected);

  // No system message: the system block is still there, empty after the date.
  t.is(
    tok.applyChatTemplate([{ role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'text', text: 'there' }] }], { templateKwargs: { date_string: '01 Jan 2025' } }),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 01 Jan 2025\n\n<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nHi\nthere<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  );

  // Encoded: exactly one BOS (the template writes it; none is added).
  const ids = tok.encodeChat(SYSTEM_USER);
  t.is(ids[0], BOS);
  t.is(ids.filter((id) => id === BOS).length, 1);
  t.deepEqual(ids.slice(0, 5), [BOS, 128006, 9125, 128007, 271]); // <|start_header_id|> system <|end_header_id|> \n\n
  t.deepEqual(ids.slice(-4), [128006, 78191, 128007, 271]); // <|start_header_id|> assistant <|end_header_id|> \n\n
  t.is(tok.decode(ids), expected);
  t.is(tok.encodeChat(SYSTEM_USER, { addSpecialTokens: true }).filter((id) => id === BOS).length, 1);
});

test('template kwargs add variables but never replace the ones the server derives', (t) => {
  const tok = llamaTokenizer({ chatTemplate: '{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}{{ extra }}' });
  const messages = [{ role: 'user' as const, content: 'Hi' }];
  t.is(tok.applyChatTemplate(messages, { templateKwargs: { extra: '!' } }), '<|begin_of_text|>[user] Hi!');
  for (const key of ['messages', 'add_generation_prompt', 'tools', 'documents', 'bos_token', 'eos_token', 'raise_exception', 'True', '__class__']) {
    t.throws(() => tok.applyChatTemplate(messages, { templateKwargs: { [key]: [{ role: 'user', content: 'other' }] } }), {
      instanceOf: ChatTemplateError, message: new RegExp(`^chat_template_kwargs\\.${key}: `),
    }, key);
  }
});

test('--chat-template also takes the template itself; a missing file is a clear error', (t) => {
  const tok = llamaTokenizer({ chatTemplate: '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}' });
  t.is(tok.applyChatTemplate([{ role: 'user', content: 'hi' }]), '[user] hi\n');
  t.true(llamaTokenizer().applyChatTemplate([{ role: 'user', content: 'hi' }]).startsWith('<|begin_of_text|>'), 'the original keeps its template');
  const error = t.throws(() => llamaTokenizer({ chatTemplate: '/no/such/template.jinja' }), { instanceOf: ChatTemplateError });
  t.regex(error!.message, /no such file/);
});

test('a model without a chat template says to pass --chat-template', (t) => {
  const dir = makeTokenizerDir((config) => delete config['chat_template']);
  const tok = Tokenizer.load(dir);
  t.false(tok.hasChatTemplate);
  t.deepEqual(tok.encode('Hello world'), [BOS, 9906, 1917]);
  const error = t.throws(() => tok.applyChatTemplate(SYSTEM_USER), { instanceOf: ChatTemplateError });
  t.is(error!.message, 'this model has no chat template; pass --chat-template');
  t.true(tok.withChatTemplate(LLAMA31_TEMPLATE_FILE).hasChatTemplate);
});

test('templates get raise_exception, strftime_now, bos_token and eos_token as in HF', (t) => {
  const tok = llamaTokenizer({
    chatTemplate: "{{ bos_token }}|{{ eos_token }}|{{ strftime_now('%d %b %Y') }}{% if messages|length > 1 %}{{ raise_exception('one message only') }}{% endif %}",
  });
  t.regex(tok.applyChatTemplate([{ role: 'user', content: 'x' }]), /^<\|begin_of_text\|>\|<\|eot_id\|>\|\d\d [A-Z][a-z]{2} \d{4}$/);
  const error = t.throws(() => tok.applyChatTemplate(SYSTEM_USER), { instanceOf: ChatTemplateError });
  t.regex(error!.message, /one message only/);
  t.is(strftime('%d %b %Y %H:%M:%S %A %B %j %y %I%p %%', new Date(2024, 6, 26, 9, 5, 3)), '26 Jul 2024 09:05:03 Friday July 208 24 09AM %');
});

test('missing or corrupt tokenizer files give errors naming the file', (t) => {
  t.throws(() => Tokenizer.load('/no/such/model'), { instanceOf: TokenizerLoadError, message: /no such model directory/ });

  const empty = mkdtempSync(join(tmpdir(), 'troupe-empty-'));
  t.throws(() => Tokenizer.load(empty), { instanceOf: TokenizerLoadError, message: /tokenizer\.json: not found/ });

  const truncated = makeTokenizerDir();
  const file = join(truncated, 'tokenizer.json');
  writeFileSync(file, readFileSync(file, 'utf8').slice(0, 5000));
  t.throws(() => Tokenizer.load(truncated), { instanceOf: TokenizerLoadError, message: /tokenizer\.json: is not valid JSON .*truncated or corrupt/ });

  const wordPiece = mkdtempSync(join(tmpdir(), 'troupe-wordpiece-'));
  writeFileSync(join(wordPiece, 'tokenizer.json'), JSON.stringify({ model: { type: 'WordPiece', vocab: {} } }));
  t.throws(() => Tokenizer.load(wordPiece), { instanceOf: TokenizerLoadError, message: /byte-level BPE/ });

  const badConfig = makeTokenizerDir();
  writeFileSync(join(badConfig, 'tokenizer_config.json'), '{"bos_token": ');
  t.throws(() => Tokenizer.load(badConfig), { instanceOf: TokenizerLoadError, message: /tokenizer_config\.json: is not valid JSON/ });

  const notDir = join(mkdtempSync(join(tmpdir(), 'troupe-file-')), 'model');
  mkdirSync(notDir);
  t.throws(() => Tokenizer.load(notDir), { instanceOf: TokenizerLoadError });
});
