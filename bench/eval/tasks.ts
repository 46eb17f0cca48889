// The evaluator's tasks, lm-eval-harness style, and how each is scored:
//
//   perplexity   rolling log-likelihood of whole documents: word-level as
//                perplexity per token (the server's tokens) and per byte
//                (UTF-8 bytes of the text, tokenizer-independent), and bits
//                per byte
//   definitions  four-way multiple choice: which definition follows "word:";
//                acc by total log-likelihood, acc_norm by log-likelihood per
//                byte of the choice, each with its standard error
//   cloze        the next word of a verse, greedy generation, exact match
//
// The built-in data is the demo model's held-out split (models/demo/heldout.json,
// written by models/demo/prepare-corpus.ts); --tasks-file takes another of the
// same shape.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface TaskData {
  perplexity: string[];
  definitions: { word: string; choices: string[]; answer: number }[];
  cloze: { prompt: string; answer: string }[];
}

export const TASK_NAMES = ['perplexity', 'definitions', 'cloze'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

export const BUILTIN_TASKS_FILE = fileURLToPath(new URL('../../../models/demo/heldout.json', import.meta.url));

export function loadTasks(file = BUILTIN_TASKS_FILE): TaskData {
  const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<TaskData>;
  return { perplexity: data.perplexity ?? [], definitions: data.definitions ?? [], cloze: data.cloze ?? [] };
}

/** The request a definitions item makes for one choice. */
export const definitionContext = (word: string): string => `${word}:`;
export const definitionContinuation = (choice: string): string => ` ${choice}`;

/** The first word of generated text, letters and apostrophes only. */
export function firstWord(text: string): string {
  const match = /[A-Za-z']+/.exec(text);
  return match ? match[0] : '';
}

export const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Mean and the standard error of the mean of 0/1 outcomes, as lm-eval-harness reports it (sample variance). */
export function meanStderr(xs: readonly number[]): { value: number; stderr: number } {
  const n = xs.length;
  if (n === 0) return { value: NaN, stderr: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { value: mean, stderr: NaN };
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { value: mean, stderr: Math.sqrt(variance / n) };
}

/** Index of the largest score; the first on ties. */
export function argmax(scores: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
  return best;
}
