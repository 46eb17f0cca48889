// Reading the tokenizer's JSON files with errors that name the file and what is wrong with it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TokenizerLoadError } from './errors.js';

export function readJsonObject(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TokenizerLoadError(file, `cannot be read: ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TokenizerLoadError(file, `is not valid JSON (${(error as Error).message}); the file may be truncated or corrupt`, { cause: error });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TokenizerLoadError(file, 'is not a JSON object');
  return json as Record<string, unknown>;
}

/** `dir`/tokenizer.json, checked to exist, with a message saying what a model directory needs. */
export function tokenizerJsonPath(dir: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new TokenizerLoadError(dir, 'no such model directory');
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) throw new TokenizerLoadError(file, 'not found; a model directory needs the HF fast tokenizer file tokenizer.json');
  return file;
}
