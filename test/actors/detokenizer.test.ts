// The incremental detokenizer: deltas that never split a UTF-8 character,
// stop strings across token boundaries (cut or kept), nothing sent and then
// taken back, skip_special_tokens, min_tokens, and the same result however
// the tokens are batched. Throughout: deltas concatenated == decode(all tokens)
// (cut at the stop string when one matched).
import test from 'ava';
import { IncrementalDetokenizer, type DetokenizeParams } from '../../actors/detokenizer/incremental.js';
import { Vocabulary } from '../../actors/tokenizer/vocabulary.js';
import { BOS, EOT, llamaTokenizer, tokenizerDir } from './tokenizer-fixture.js';

const vocab = Vocabulary.load(tokenizerDir());
const encode = (text: string) => llamaTokenizer().encode(text, { addSpecialTokens: false });

interface Run {
  deltas: string[];
  stop: string | null;
  /** Text sent after each push: must only ever grow (nothing taken back). */
  sentSoFar: string[];
}

/** Feeds `ids` in chunks of the given sizes (cycled), then finishes. */
function run(ids: readonly number[], params: DetokenizeParams = {}, chunks: readonly number[] = [1]): Run {
  const detok = new IncrementalDetokenizer(vocab, params);
  const deltas: string[] = [];
  const sentSoFar: string[] = [];
  let stop: string | null = null;
  for (let at = 0, c = 0; at < ids.length; c++) {
    const n = chunks[c % chunks.length]!;
    const update = detok.push(ids.slice(at, at + n));
    at += n;
    deltas.push(update.delta);
    sentSoFar.push(detok.output);
    stop = update.stop;
  }
  const last = detok.finish();
  deltas.push(last.delta);
  sentSoFar.push(detok.output);
  return { deltas, stop: last.stop ?? stop, sentSoFar };
}

function assertOnlyGrows(t: { true: (v: boolean, m?: string) => void }, r: Run): void {
  for (let i = 1; i < r.sentSoFar.length; i++) t.true(r.sentSoFar[i]!.startsWith(r.sentSoFar[i - 1]!), 'sent text only grows');
}

test('a character split across tokens is emitted whole, never as U+FFFD', (t) => {
  const text = 'Llamas 🦙🦙 say 你好 𝔸 and ℝ.';
  const ids = encode(text);
  // The fixture really splits characters: some tokens alone are partial UTF-8.
  const partial = ids.filter((id) => vocab.decode([id], false).includes('\uFFFD'));
  t.true(partial.length >= 6, `tokens holding part of a character: ${partial.length}`);

  const r = run(ids);
  for (const delta of r.deltas) t.false(delta.includes('\uFFFD'), JSON.stringify(delta));
  t.is(r.deltas.join(''), text);
  t.is(r.deltas.join(''), vocab.decode(ids, true));
  // " 🦙" is 3 tokens (" \xF0\x9F", "\xA6", "\x99"): the space goes at once, the emoji with its last byte.
  const llama = ids.indexOf(11410);
  t.deepEqual(ids.slice(llama, llama + 3), [11410, 99, 247]);
  t.deepEqual(r.deltas.slice(llama, llama + 3), [' ', '', '🦙']);
  t.is(r.stop, null);
});

test('an unfinished character at the end is flushed as U+FFFD, like a full decode', (t) => {
  const r = run([9906, 9468]); // "Hello" + the first two bytes of a 4-byte emoji
  t.deepEqual(r.deltas, ['Hello', '', '\uFFFD']);
  t.is(r.deltas.join(''), vocab.decode([9906, 9468], true));
});

test('a stop string spanning tokens and ending mid-token is cut from the output', (t) => {
  const ids = encode('The answer is 42. Then more text'); // "The" " answer" " is" " " "42" "." ...
  const r = run(ids, { stop: ['is 4'] });
  t.is(r.stop, 'is 4');
  t.is(r.deltas.join(''), 'The answer ');
  assertOnlyGrows(t, r);
  // The match completes at "42" (token 5); nothing after it is ever decoded into the output.
  const detok = new IncrementalDetokenizer(vocab, { stop: ['is 4'] });
  t.deepEqual(detok.push(ids.slice(0, 4)), { delta: 'The answer ', stop: null }); // "is " held: it could start "is 4"
  t.deepEqual(detok.push(ids.slice(4, 5)), { delta: '', stop: 'is 4' });
  t.true(detok.done);
  t.deepEqual(detok.push(ids.slice(5)), { delta: '', stop: 'is 4' });
});

test('include_stop_str_in_output keeps the stop string and nothing after it', (t) => {
  const ids = encode('The answer is 42. Then more text');
  const r = run(ids, { stop: ['is 4'], includeStopStrInOutput: true });
  t.is(r.stop, 'is 4');
  t.is(r.deltas.join(''), 'The answer is 4');
  assertOnlyGrows(t, r);
});

test('no partial stop string is ever sent: the tail (longest stop - 1) is held back until it cannot start one', (t) => {
  const detok = new IncrementalDetokenizer(vocab, { stop: ['STOP'] });
  t.deepEqual(detok.push([9906]), { delta: 'He', stop: null }); // "Hello": "llo" held (3 = len("STOP") - 1)
  t.deepEqual(detok.push([1917]), { delta: 'llo wo', stop: null }); // " world": "rld" held
  t.deepEqual(detok.finish(), { delta: 'rld', stop: null });
  t.is(detok.output, 'Hello world');

  // A stop string arriving token by token: its start is never sent.
  const ids = encode('one two three four');
  const r = run(ids, { stop: [' three f'] });
  t.is(r.deltas.join(''), 'one two');
  for (const sent of r.sentSoFar) t.false(sent.includes(' th'), JSON.stringify(sent));
});

test('with several stop strings the first to complete wins, whatever their order', (t) => {
  const ids = encode('Hello world');
  for (const stop of [['world', 'lo w'], ['lo w', 'world']]) {
    const r = run(ids, { stop });
    t.is(r.stop, 'lo w');
    t.is(r.deltas.join(''), 'Hel');
  }
  // Both complete in the same token: the one ending first wins.
  const both = run(encode('abc xyz'), { stop: ['xyz', 'c x'] });
  t.is(both.stop, 'c x');
  t.is(both.deltas.join(''), 'ab');
});

test('the same deltas concatenated and the same stop however the tokens are batched', (t) => {
  const text = 'Once upon a time 🦙 a llama said: "你好, 𝔸ℝ!" and then STOP here, or maybe END.';
  const ids = encode(text);
  const cases: DetokenizeParams[] = [
    {},
    { stop: ['STOP'] },
    { stop: ['STOP'], includeStopStrInOutput: true },
    { stop: ['llama', 'time 🦙'] },
    { stop: ['好, 𝔸'] },
    { stop: ['END.', 'NOPE'] },
  ];
  for (const params of cases) {
    const one = run(ids, params, [1]);
    const expected = one.deltas.join('');
    if (params.stop === undefined) t.is(expected, text);
    for (const chunks of [[2], [3, 1], [5, 2, 7], [ids.length]]) {
      const other = run(ids, params, chunks);
      t.is(other.deltas.join(''), expected, `${JSON.stringify(params)} in chunks ${chunks}`);
      t.is(other.stop, one.stop);
      assertOnlyGrows(t, other);
      for (const delta of other.deltas) t.false(delta.includes('\uFFFD'));
    }
  }
  t.is(run(ids, { stop: ['llama', 'time 🦙'] }).deltas.join(''), 'Once upon a ');
  t.is(run(ids, { stop: ['好, 𝔸'] }).deltas.join(''), 'Once upon a time 🦙 a llama said: "你');
  t.is(run(ids, { stop: ['STOP'], includeStopStrInOutput: true }).deltas.join(''), text.slice(0, text.indexOf('STOP') + 4));
});

test('held-back text never splits a surrogate pair between deltas', (t) => {
  // A stop of 2 code units holds back 1: after an emoji that would be its low surrogate.
  const ids = encode('🦙🦙🦙 ok');
  const r = run(ids, { stop: ['zz'] });
  const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
  for (const delta of r.deltas) t.false(lone.test(delta), JSON.stringify(delta));
  t.is(r.deltas.join(''), '🦙🦙🦙 ok');
  const cut = run(encode('a🦙b'), { stop: ['🦙'] });
  t.is(cut.deltas.join(''), 'a');
  t.is(cut.stop, '🦙');
});

test('skip_special_tokens (default true) leaves special tokens out; false keeps them and stop strings can match them', (t) => {
  const ids = [BOS, 9906, 1917, EOT];
  t.is(run(ids).deltas.join(''), 'Hello world');
  t.is(run(ids, { skipSpecialTokens: false }).deltas.join(''), '<|begin_of_text|>Hello world<|eot_id|>');
  t.is(run(ids, { skipSpecialTokens: false }).deltas.join(''), vocab.decode(ids, false));
  const stopped = run(ids, { skipSpecialTokens: false, stop: ['<|eot_id|>'] });
  t.is(stopped.stop, '<|eot_id|>');
  t.is(stopped.deltas.join(''), '<|begin_of_text|>Hello world');
  // Special tokens between the bytes of one character do not break it when skipped.
  t.is(run([11410, EOT, 99, 247]).deltas.join(''), ' 🦙');
});

test('stop strings are not looked for within min_tokens (as in vLLM)', (t) => {
  const ids = encode(' Hello world Hello again'); // " Hello" " world" " Hello" " again"
  t.is(run(ids, { stop: ['Hello'] }).deltas.join(''), ' ');
  const r = run(ids, { stop: ['Hello'], minTokens: 1 });
  t.is(r.stop, 'Hello');
  t.is(r.deltas.join(''), ' Hello world ');
});

test('bad parameters are refused', (t) => {
  t.throws(() => new IncrementalDetokenizer(vocab, { stop: [''] }), { instanceOf: RangeError, message: /stop\[0\] must be a non-empty string/ });
  t.throws(() => new IncrementalDetokenizer(vocab, { stop: ['\uD83E'] }), { instanceOf: RangeError, message: /unpaired UTF-16 surrogate/ });
  t.throws(() => new IncrementalDetokenizer(vocab, { minTokens: -1 }), { instanceOf: RangeError });
});
