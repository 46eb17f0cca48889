// The embedded default model answers in English: 64-token greedy answers to
// fixed chat prompts, served through the gateway, are made of dictionary
// words (Debian's wamerican list, /usr/share/dict/words) with a fair share of
// the most common English words. A run of one repeated word counts once, so
// "the the the ..." cannot pass. Random weights score about 42% and 3%.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MODEL, ensureDefaultModel } from '../../cli/default-model.js';
import { tempDir } from '../models/helpers.js';
import { startGateway, type TestGateway } from '../gateway/helpers.js';

const WORDS_FILE = '/usr/share/dict/words';
const PROMPTS = ['Hello', 'What does happiness mean?', 'What does river mean?', 'Define courage.', 'Who are you?'];
/** The hundred most common English words (Fry's first hundred instant words). */
const COMMON = new Set(
  ('the of and a to in is you that it he was for on are as with his they i at be this have from or one had by words but not what all were we when your can said there use an each which she do how their if will up other ' +
    'about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part').split(' '),
);

let gateway: TestGateway;

test.before(async () => {
  const { dir } = ensureDefaultModel({ XDG_CACHE_HOME: tempDir('default-model-cache') });
  gateway = await startGateway({ modelDir: dir, engine: { maxModelLen: 1024 }, gateway: { servedModelNames: [DEFAULT_MODEL.servedName] } });
});

test.after.always(async () => {
  await gateway?.close();
});

/** Lower-case words of text, a run of one repeated word counted once. */
export function words(text: string): string[] {
  const all = (text.match(/[A-Za-z]+(?:'[a-z]+)?/g) ?? []).map((w) => w.toLowerCase());
  return all.filter((w, i) => i === 0 || w !== all[i - 1]);
}

test('the default model is expanded from the committed checkpoint, with the real tokenizer', (t) => {
  t.true(existsSync(join(gateway.modelDir, 'model.safetensors')));
  t.true(existsSync(join(gateway.modelDir, 'tokenizer.json')));
  t.regex(readFileSync(join(gateway.modelDir, 'README.md'), 'utf8'), /troupe-demo-36m/);
});

test('greedy chat answers to fixed prompts are English', async (t) => {
  t.true(existsSync(WORDS_FILE), `${WORDS_FILE} is missing: apt-get install wamerican`);
  const dictionary = new Set(readFileSync(WORDS_FILE, 'utf8').split('\n').map((w) => w.trim().toLowerCase()).filter((w) => w !== ''));
  const answers: string[] = [];
  for (const prompt of PROMPTS) {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: DEFAULT_MODEL.servedName, messages: [{ role: 'user', content: prompt }], max_tokens: 64, temperature: 0 }),
    });
    t.is(response.status, 200);
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    answers.push(body.choices[0]!.message.content);
  }
  const all = answers.flatMap(words);
  t.true(all.length >= 20, `the answers have words: ${JSON.stringify(answers)}`);
  const inDictionary = all.filter((w) => dictionary.has(w) || dictionary.has(w.replace(/'s$/, ''))).length / all.length;
  const common = all.filter((w) => COMMON.has(w)).length / all.length;
  t.log(`in ${WORDS_FILE}: ${(100 * inDictionary).toFixed(1)}%, among the 100 most common: ${(100 * common).toFixed(1)}%`);
  t.true(inDictionary >= 0.85, `${(100 * inDictionary).toFixed(1)}% dictionary words in ${JSON.stringify(answers)}`);
  t.true(common >= 0.2, `${(100 * common).toFixed(1)}% common words in ${JSON.stringify(answers)}`);
});
