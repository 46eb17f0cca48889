// The tasks a tokenizer pool thread serves, and what each returns. Results
// carry errors as data: a thrown Error loses its name crossing the thread.
import type { TokenizerErrorInfo } from './errors.js';
import type { ChatMessage } from './prompt.js';

export type TokenizerTask =
  | { op: 'encode'; text: string; addSpecialTokens: boolean }
  | { op: 'chat'; messages: ChatMessage[]; addGenerationPrompt: boolean; addSpecialTokens: boolean; templateKwargs?: Record<string, unknown>; tools?: Record<string, unknown>[] }
  | { op: 'decode'; tokenIds: number[]; skipSpecialTokens: boolean }
  | { op: 'info' };

/** What a pool thread knows about its tokenizer. */
export interface TokenizerFacts {
  vocabSize: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  specialTokenIds: number[];
  hasChatTemplate: boolean;
}

export type TaskValue<T extends TokenizerTask> =
  T extends { op: 'encode' } ? { tokenIds: number[] }
    : T extends { op: 'chat' } ? { tokenIds: number[]; prompt: string }
      : T extends { op: 'decode' } ? { text: string }
        : TokenizerFacts;

export type TaskResult<V> = { ok: true; value: V } | { ok: false; error: TokenizerErrorInfo };

/** What the worker module gets as piscina's workerData. */
export interface TokenizerWorkerData {
  modelDir: string;
  chatTemplate?: string;
}
