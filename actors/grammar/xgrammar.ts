// Loads @mlc-ai/web-xgrammar. Its lib/index.js is a UMD bundle (CommonJS when
// `module` and `exports` exist) inside a "type": "module" package, so neither
// `import` nor `require` reads it as what it is: it is compiled here as a
// CommonJS module under its own file name. The wasm is embedded in the bundle.
//
// A grammar xgrammar cannot compile (an unsupported schema, a bad regex or
// EBNF) aborts the wasm call with a RuntimeError whose message says only
// "Aborted()"; the reason goes to the module's error printer. The printer is
// routed here (`lastMessage`) so the caller can name what was wrong.
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as XGrammar from '@mlc-ai/web-xgrammar';

export type XGrammarModule = typeof XGrammar;

let loaded: XGrammarModule | undefined;
const messages: string[] = [];

/** Runs `f`; when xgrammar aborts, throws an Error with the reason it printed. */
export async function withXgrammarErrors<T>(f: () => Promise<T>): Promise<T> {
  messages.length = 0;
  try {
    return await f();
  } catch (error) {
    const reason = messages.map((t) => t.replace(/^\[FATAL\] \S+: ?/, '')).join('; ');
    throw new Error(reason || (error as Error).message);
  } finally {
    messages.length = 0;
  }
}

/** The xgrammar module (loaded once per thread). */
export function xgrammar(): XGrammarModule {
  if (loaded) return loaded;
  const file = createRequire(import.meta.url).resolve('@mlc-ai/web-xgrammar');
  type CjsModule = { filename: string; paths: string[]; exports: unknown; _compile(source: string, file: string): void };
  const ModuleClass = Module as unknown as { new (id: string): CjsModule; _nodeModulePaths(dir: string): string[] };
  const m = new ModuleClass(file);
  m.filename = file;
  m.paths = ModuleClass._nodeModulePaths(dirname(file));
  const source = readFileSync(file, 'utf8');
  const printer = 'var err=Module["printErr"]||console.error.bind(console);';
  if (!source.includes(printer)) throw new Error(`${file}: its error printer was not found; the xgrammar version does not match the one Troupe pins`);
  (m as unknown as { xgrammarErr: (text: string) => void }).xgrammarErr = (text: string) => {
    if (!text.startsWith('Aborted(')) messages.push(text);
  };
  m._compile(source.replace(printer, 'var err=(text)=>module.xgrammarErr(String(text));'), file);
  loaded = m.exports as XGrammarModule;
  return loaded;
}
