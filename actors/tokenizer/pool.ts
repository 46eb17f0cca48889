// A pool of tokenizer threads (piscina). Each thread loads the Tokenizer once;
// tasks go to whichever thread is free. Tokenizing a long prompt takes
// milliseconds to hundreds of them, which must not stall the event loop that
// routes messages.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { reviveTokenizerError } from './errors.js';
import type { ChatMessage } from './prompt.js';
import type { TaskResult, TaskValue, TokenizerFacts, TokenizerTask, TokenizerWorkerData } from './tasks.js';

export interface TokenizerPoolOptions {
  modelDir: string;
  /** `--chat-template`: a file path or the template itself. */
  chatTemplate?: string;
  /** Threads in the pool (default: defaultTokenizerThreads()). */
  threads?: number;
}

/**
 * Half the cores, at least 1 and at most 4: on a 2-core machine one thread,
 * so tokenizing never takes both cores from the compute threads.
 */
export function defaultTokenizerThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.min(4, Math.floor(cores / 2)));
}

export class TokenizerPool {
  readonly threads: number;
  private readonly piscina: Piscina<TokenizerTask, TaskResult<unknown>>;
  private destroyed = false;

  constructor(options: TokenizerPoolOptions) {
    this.threads = options.threads ?? defaultTokenizerThreads();
    if (!Number.isInteger(this.threads) || this.threads < 1) throw new RangeError(`a tokenizer pool needs at least 1 thread, got ${options.threads}`);
    const workerData: TokenizerWorkerData = { modelDir: options.modelDir, ...(options.chatTemplate !== undefined ? { chatTemplate: options.chatTemplate } : {}) };
    this.piscina = new Piscina({
      filename: new URL('./worker.js', import.meta.url).href,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      workerData,
    });
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): Promise<number[]> {
    return this.run({ op: 'encode', text, addSpecialTokens: options.addSpecialTokens ?? true }).then((v) => v.tokenIds);
  }

  /** The rendered conversation and its ids (no special tokens added unless asked: the template writes BOS). */
  encodeChat(
    messages: ChatMessage[],
    options: { addGenerationPrompt?: boolean; addSpecialTokens?: boolean; templateKwargs?: Record<string, unknown>; tools?: Record<string, unknown>[] } = {},
  ): Promise<{ prompt: string; tokenIds: number[] }> {
    return this.run({
      op: 'chat',
      messages,
      addGenerationPrompt: options.addGenerationPrompt ?? true,
      addSpecialTokens: options.addSpecialTokens ?? false,
      ...(options.templateKwargs ? { templateKwargs: options.templateKwargs } : {}),
      ...(options.tools ? { tools: options.tools } : {}),
    });
  }

  decode(tokenIds: number[], options: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    return this.run({ op: 'decode', tokenIds, skipSpecialTokens: options.skipSpecialTokens ?? false }).then((v) => v.text);
  }

  /** Facts about the tokenizer; rejects with the load error if the threads could not load it. */
  info(): Promise<TokenizerFacts> {
    return this.run({ op: 'info' });
  }

  /** The live worker threads (for tests and metrics). */
  get workers(): readonly Worker[] {
    return this.piscina.threads;
  }

  /** Ends every thread; tasks still queued or running are rejected. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.piscina.destroy();
  }

  private async run<T extends TokenizerTask>(task: T): Promise<TaskValue<T>> {
    if (this.destroyed) throw new Error('the tokenizer pool has been destroyed');
    const result = await this.piscina.run(task);
    if (!result.ok) throw reviveTokenizerError(result.error);
    return result.value as TaskValue<T>;
  }
}
