// The grammar engine of one model: xgrammar's tokenizer info built once from
// the model's vocabulary, grammars compiled per request spec and cached by
// key, matchers made per sequence. A plain class (tests drive it directly);
// the scheduler actor and the API share one per process (grammarEngineFor).
//
// Request grammars are first converted in a disposable checking instance of
// xgrammar (an error there aborts and breaks that instance: xgrammar.ts), so a
// bad schema, regex or grammar is reported by name and never reaches the
// serving instance, whose compiled grammars and matchers stay valid.
import type { CompiledGrammar, GrammarCompiler } from '@mlc-ai/web-xgrammar';
import { Vocabulary } from '../tokenizer/vocabulary.js';
import { jsonStringSafeEbnf } from './json-string-chars.js';
import { GrammarSpecError, grammarKey, structuralTagOf, type GrammarSpec } from './grammar-spec.js';
import { substituteBuiltRules, withBuiltRules } from './schema-rules.js';
import { SequenceGrammar } from './sequence-grammar.js';
import { loadXgrammar, type XGrammarBinding, type XGrammarInstance } from './xgrammar.js';

/** The parts of a vocabulary the tokenizer info is built from. */
export interface GrammarVocabulary {
  size: number;
  /** The byte-level token string of id (undefined: no token). */
  idToToken(id: number): string | undefined;
  isSpecial(id: number): boolean;
}

export interface GrammarEngineOptions {
  /** The logits' width (config.json vocab_size; may exceed the tokenizer's). */
  vocabSize: number;
  /** Tokens that end a generation (eos ids): the only ones allowed once a grammar is complete. */
  stopTokenIds: readonly number[];
  /** Compiled grammars kept (least recently used dropped first). */
  cacheSize?: number;
}

/**
 * JSON is generated compact (no free whitespace between elements): a grammar
 * that allows any whitespace lets a model emit it forever, which weak models
 * (and the random test models) do.
 */
const ANY_WHITESPACE = false;
const ONE_LINE = -1;

export class GrammarEngine {
  private readonly cache = new Map<string, CompiledGrammar>();
  private checker: XGrammarInstance | undefined;
  /** Compile times of the grammars compiled so far, ms (bench/structured.bench.ts). */
  readonly compileMs: number[] = [];

  private constructor(
    private readonly serving: XGrammarInstance,
    private readonly compiler: GrammarCompiler,
    private readonly binding: XGrammarBinding,
    readonly vocabSize: number,
    readonly stopTokenIds: readonly number[],
    private readonly cacheSize: number,
  ) {}

  /** Builds the tokenizer info from the vocabulary (special and absent ids are never allowed inside a grammar). */
  static async create(vocab: GrammarVocabulary, options: GrammarEngineOptions): Promise<GrammarEngine> {
    const serving = loadXgrammar();
    const xg = serving.module;
    const encoded: string[] = new Array<string>(options.vocabSize);
    for (let id = 0; id < options.vocabSize; id++) {
      const token = id < vocab.size && !vocab.isSpecial(id) ? vocab.idToToken(id) : undefined;
      encoded[id] = token ?? ''; // xgrammar treats empty tokens as special: never matched as text
    }
    const info = await serving.run(() => xg.TokenizerInfo.createTokenizerInfo(encoded, 'byte_level', false, options.vocabSize, [...options.stopTokenIds]));
    const compiler = await serving.run(() => xg.GrammarCompiler.createGrammarCompiler(info, false));
    const binding = serving.binding();
    if (!binding) throw new Error('xgrammar did not initialize its binding');
    return new GrammarEngine(serving, compiler, binding, options.vocabSize, options.stopTokenIds, options.cacheSize ?? 256);
  }

  /** Loads `modelDir`'s tokenizer.json and builds the engine. */
  static async forModel(modelDir: string, options: GrammarEngineOptions): Promise<GrammarEngine> {
    return GrammarEngine.create(Vocabulary.load(modelDir), options);
  }

  /** The compiled grammar of `spec`, compiled now unless cached; a bad spec throws GrammarSpecError naming `field`. */
  async compile(spec: GrammarSpec, field = 'structuredOutput'): Promise<CompiledGrammar> {
    const key = grammarKey(spec);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    await this.check(spec, field);
    const started = performance.now();
    const compiled = await this.serving.run(() => this.compileIn(spec));
    this.compileMs.push(performance.now() - started);
    this.cache.set(key, compiled);
    if (this.cache.size > this.cacheSize) {
      const [oldest] = this.cache.keys();
      // matchers made from it keep their own reference (xgrammar's shared pointer)
      this.cache.get(oldest!)!.dispose();
      this.cache.delete(oldest!);
    }
    return compiled;
  }

  /** The cached compiled grammar of `spec`, if any (no compile). */
  cached(spec: GrammarSpec): CompiledGrammar | undefined {
    return this.cache.get(grammarKey(spec));
  }

  /** A matcher at the start of `compiled`. */
  matcher(compiled: CompiledGrammar): SequenceGrammar {
    const native = new this.binding.GrammarMatcher(compiled.handle, undefined, false, -1);
    return new SequenceGrammar(native, this.binding, this.vocabSize);
  }

  private compileIn(spec: GrammarSpec): Promise<CompiledGrammar> {
    switch (spec.type) {
      case 'json_object':
        return this.compiler.compileBuiltinJSONGrammar();
      case 'json_schema':
        return this.compileJsonSchema(spec.schema);
      case 'regex':
      case 'choice':
        return this.compiler.compileStructuralTag(structuralTagOf(spec));
      case 'grammar':
        return this.compiler.compileGrammar(spec.grammar);
    }
  }

  /**
   * xgrammar's grammar of `schema`, its strings kept to what JSON allows
   * unescaped (json-string-chars.ts), its bounded numbers and strings built
   * here (schema-rules.ts).
   */
  private async compileJsonSchema(schema: Extract<GrammarSpec, { type: 'json_schema' }>['schema']): Promise<CompiledGrammar> {
    const built = withBuiltRules(schema);
    const grammar = await this.serving.module.Grammar.fromJSONSchema(JSON.stringify(built.schema), ANY_WHITESPACE, ONE_LINE);
    try {
      return await this.compiler.compileGrammar(substituteBuiltRules(jsonStringSafeEbnf(grammar.toString()), built.rules));
    } finally {
      grammar.dispose();
    }
  }

  /** Converts `spec` to a grammar in the checking instance; replaces that instance when it aborted. */
  private async check(spec: GrammarSpec, field: string): Promise<void> {
    if (spec.type === 'json_object') return;
    if (!this.checker || this.checker.broken) this.checker = loadXgrammar();
    const xg = this.checker.module;
    try {
      const grammar = await this.checker.run(() => {
        switch (spec.type) {
          case 'json_schema':
            return xg.Grammar.fromJSONSchema(JSON.stringify(withBuiltRules(spec.schema).schema), ANY_WHITESPACE, ONE_LINE);
          case 'regex':
          case 'choice':
            return xg.Grammar.fromStructuralTag(structuralTagOf(spec));
          case 'grammar':
            return xg.Grammar.fromEBNF(spec.grammar);
        }
      });
      grammar.dispose();
    } catch (error) {
      const what = spec.type === 'json_schema' ? 'invalid or unsupported JSON schema' : spec.type === 'regex' ? 'invalid regular expression' : spec.type === 'grammar' ? 'invalid grammar' : 'invalid choices';
      throw new GrammarSpecError(field, `${what}: ${(error as Error).message}`);
    }
  }
}

const engines = new Map<string, Promise<GrammarEngine>>();

/** The process's grammar engine for `modelDir` (built on first use, then shared). */
export function grammarEngineFor(modelDir: string, options: GrammarEngineOptions): Promise<GrammarEngine> {
  let engine = engines.get(modelDir);
  if (!engine) {
    engine = GrammarEngine.forModel(modelDir, options);
    engines.set(modelDir, engine);
    engine.catch(() => engines.delete(modelDir));
  }
  return engine;
}
