// Loads @mlc-ai/web-xgrammar. Its lib/index.js is a UMD bundle (CommonJS when
// `module` and `exports` exist) inside a "type": "module" package, so neither
// `import` nor `require` reads it as what it is: it is compiled here as a
// CommonJS module under its own file name. The wasm is embedded in the bundle.
//
// Two edits to the bundle's text, both checked to match:
//  1. Its error printer is routed to the instance (`messages`). A grammar
//     xgrammar cannot compile (an unsupported schema, a bad regex or EBNF)
//     aborts the wasm call with a RuntimeError that says only "Aborted()"; the
//     reason is what it printed.
//  2. Its embind binding is exposed, so that a matcher is made and a mask
//     filled synchronously (the package's wrappers are async only to await
//     the module's first initialization), straight into the caller's buffer.
//
// An abort leaves the wasm instance unusable (later calls fail with "table
// index is out of bounds"), so every instance is disposable: grammars from
// requests are first converted in a checking instance, which is replaced
// after it aborts, and only grammars that passed reach the serving one.
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as XGrammar from '@mlc-ai/web-xgrammar';

type XGrammarModule = typeof XGrammar;

/** What the embind binding offers beyond the package's wrappers (the names are xgrammar's). */
export interface XGrammarBinding {
  GrammarMatcher: new (compiled: unknown, stopTokens: unknown, terminateWithoutStop: boolean, maxRollback: number) => NativeMatcher;
  vecIntToView(vector: unknown): Int32Array;
}
export interface NativeMatcher {
  AcceptToken(id: number, verbose: boolean): boolean;
  GetNextTokenBitmask(vocabSize: number): { delete(): void };
  IsTerminated(): boolean;
  Reset(): void;
  delete(): void;
}

export interface XGrammarInstance {
  module: XGrammarModule;
  /** The binding (null until the module's first async call initialized it). */
  binding(): XGrammarBinding | null;
  /** Runs `f`; when xgrammar aborts, throws an Error with the reason it printed, and marks the instance broken. */
  run<T>(f: () => Promise<T>): Promise<T>;
  /** Whether an abort left this instance unusable. */
  readonly broken: boolean;
}

const PRINTER = 'var err=Module["printErr"]||console.error.bind(console);';
const BINDING = 'let binding = null;';

let source: { file: string; text: string } | undefined;

function bundle(): { file: string; text: string } {
  if (source) return source;
  const file = createRequire(import.meta.url).resolve('@mlc-ai/web-xgrammar');
  const text = readFileSync(file, 'utf8');
  for (const part of [PRINTER, BINDING]) {
    if (!text.includes(part)) throw new Error(`${file}: '${part}' was not found; this xgrammar build is not the one Troupe pins`);
  }
  source = {
    file,
    text: text
      .replace(PRINTER, 'var err=(text)=>module.xgrammarErr(String(text));')
      .replace(BINDING, 'let binding = null; module.xgrammarBinding = () => binding;'),
  };
  return source;
}

/** A fresh xgrammar instance (its own wasm memory). */
export function loadXgrammar(): XGrammarInstance {
  const { file, text } = bundle();
  type CjsModule = {
    filename: string; paths: string[]; exports: unknown; _compile(source: string, file: string): void;
    xgrammarErr?: (text: string) => void; xgrammarBinding?: () => XGrammarBinding | null;
  };
  const ModuleClass = Module as unknown as { new (id: string): CjsModule; _nodeModulePaths(dir: string): string[] };
  const m = new ModuleClass(file);
  m.filename = file;
  m.paths = ModuleClass._nodeModulePaths(dirname(file));
  const messages: string[] = [];
  m.xgrammarErr = (line) => {
    if (!line.startsWith('Aborted(')) messages.push(line);
  };
  m._compile(text, file);
  let broken = false;
  return {
    module: m.exports as XGrammarModule,
    binding: () => m.xgrammarBinding!(),
    get broken() {
      return broken;
    },
    async run<T>(f: () => Promise<T>): Promise<T> {
      if (broken) throw new Error('this xgrammar instance aborted before and cannot be used');
      messages.length = 0;
      try {
        return await f();
      } catch (error) {
        broken = true;
        const reason = messages.map((line) => line.replace(/^\[FATAL\] \S+: ?/, '')).join('; ');
        throw new Error(reason || (error as Error).message);
      } finally {
        messages.length = 0;
      }
    },
  };
}
