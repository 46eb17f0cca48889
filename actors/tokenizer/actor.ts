// The tokenizer actor: validates prompts, has the pool tokenize them, checks
// their length against max_model_len, and replies. It never waits on one
// task before taking the next message, so the pool's threads work in
// parallel; once `maxInFlight` tasks are pending it does wait, which leaves
// further requests in its bounded mailbox (backpressure to the senders).
import { Actor, type ActorRef, type StopReason } from '../../runtime/index.js';
import { NO_CHAT_TEMPLATE_MESSAGE } from './chat-template.js';
import { ChatTemplateError, errorInfo, PromptError } from './errors.js';
import type { DecodeReply, TokenizeOptions, TokenizeReply, TokenizerInfo, TokenizerMessage } from './messages.js';
import { TokenizerPool } from './pool.js';
import { checkPromptLength, checkTokenIds, validatePromptInput } from './prompt.js';

export interface TokenizerActorOptions {
  modelDir: string;
  /** Prompts longer than this are refused (never truncated). */
  maxModelLen: number;
  /** `--chat-template`: a file path or the template itself. */
  chatTemplate?: string;
  /** Pool threads (default: defaultTokenizerThreads()). */
  threads?: number;
  /** Bound on token ids in prompts; default the tokenizer's vocabulary size. */
  vocabSize?: number;
  /** Tasks in the pool at once before the actor stops taking messages (default 4 per thread). */
  maxInFlight?: number;
}

export class TokenizerActor extends Actor<TokenizerMessage> {
  private pool: TokenizerPool | undefined;
  private facts!: TokenizerInfo;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: TokenizerActorOptions) {
    super();
    if (!Number.isInteger(options.maxModelLen) || options.maxModelLen < 1) {
      throw new RangeError(`maxModelLen must be a positive integer, got ${options.maxModelLen}`);
    }
  }

  /** The pool (tests check its threads). */
  get tokenizerPool(): TokenizerPool | undefined {
    return this.pool;
  }

  /** Starts the pool and waits for the tokenizer to load, so a bad model directory fails the spawn. */
  override async preStart(): Promise<void> {
    const { modelDir, chatTemplate, threads } = this.options;
    const pool = new TokenizerPool({ modelDir, ...(chatTemplate !== undefined ? { chatTemplate } : {}), ...(threads !== undefined ? { threads } : {}) });
    this.pool = pool;
    try {
      const facts = await pool.info();
      this.facts = { ...facts, vocabSize: this.options.vocabSize ?? facts.vocabSize, maxModelLen: this.options.maxModelLen, threads: pool.threads };
    } catch (error) {
      await pool.destroy(); // postStop does not run when preStart fails
      throw error;
    }
  }

  receive(message: TokenizerMessage): void | Promise<void> {
    switch (message.type) {
      case 'info':
        message.replyTo.tell(this.facts);
        return;
      case 'tokenize':
        return this.track(this.tokenize(message.prompt, message.options ?? {}).then((reply) => replySafely(message.replyTo, reply)));
      case 'decode':
        return this.track(this.decode(message.tokenIds, message.skipSpecialTokens ?? false).then((reply) => replySafely(message.replyTo, reply)));
    }
  }

  override async postStop(_reason: StopReason): Promise<void> {
    await this.pool?.destroy();
  }

  private async tokenize(input: unknown, options: TokenizeOptions): Promise<TokenizeReply> {
    try {
      const prompt = validatePromptInput(input);
      const pool = this.pool!;
      let promptTokenIds: number[];
      let text: string | null;
      switch (prompt.kind) {
        case 'tokens':
          checkTokenIds(prompt.tokenIds, this.facts.vocabSize);
          [promptTokenIds, text] = [prompt.tokenIds, null];
          break;
        case 'text':
          promptTokenIds = await pool.encode(prompt.text, { addSpecialTokens: options.addSpecialTokens ?? true });
          text = prompt.text;
          break;
        case 'chat': {
          if (!this.facts.hasChatTemplate) throw new ChatTemplateError(NO_CHAT_TEMPLATE_MESSAGE);
          const chat = await pool.encodeChat(prompt.messages, {
            addGenerationPrompt: options.addGenerationPrompt ?? true,
            addSpecialTokens: options.addSpecialTokens ?? false,
            ...(options.templateKwargs ? { templateKwargs: options.templateKwargs } : {}),
            ...(options.tools ? { tools: options.tools } : {}),
          });
          [promptTokenIds, text] = [chat.tokenIds, chat.prompt];
          break;
        }
      }
      if (promptTokenIds.length === 0) throw new PromptError('the prompt is empty after tokenization');
      const maxTokens = validMaxTokens(options.maxTokens);
      try {
        checkPromptLength(promptTokenIds.length, this.facts.maxModelLen, maxTokens);
      } catch (error) {
        return { ok: false, error: { ...errorInfo(error), promptLength: promptTokenIds.length } };
      }
      return { ok: true, promptTokenIds, prompt: text };
    } catch (error) {
      return { ok: false, error: errorInfo(error) };
    }
  }

  private async decode(tokenIds: unknown, skipSpecialTokens: boolean): Promise<DecodeReply> {
    try {
      if (!Array.isArray(tokenIds)) throw new PromptError('decode needs a list of token ids');
      checkTokenIds(tokenIds, this.facts.vocabSize);
      return { ok: true, text: await this.pool!.decode(tokenIds as number[], { skipSpecialTokens }) };
    } catch (error) {
      return { ok: false, error: errorInfo(error) };
    }
  }

  /** Keeps count of pool tasks; at the bound, the handler waits for one to finish. */
  private track(task: Promise<void>): Promise<void> | void {
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
    const bound = this.options.maxInFlight ?? 4 * (this.pool?.threads ?? 1);
    if (this.inFlight.size >= bound) return Promise.race(this.inFlight);
  }
}

/** A reply that cannot be delivered (the asker gave up) must not fail the actor. */
function replySafely<R>(to: ActorRef<R>, reply: R): void {
  try {
    to.tell(reply);
  } catch (error) {
    console.warn(`[troupe] tokenizer: reply to ${to.path} failed: ${(error as Error).message}`);
  }
}

function validMaxTokens(maxTokens: unknown): number | undefined {
  if (maxTokens === undefined) return undefined;
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new PromptError(`max_tokens must be a positive integer, got ${JSON.stringify(maxTokens)}`);
  }
  return maxTokens;
}
