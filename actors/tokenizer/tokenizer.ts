// The tokenizer of a model directory: tokenizer.json (encoded with
// @lenml/tokenizers, a pure-JS port of HF's fast tokenizers) and
// tokenizer_config.json (special tokens, chat template). Decoding goes through
// the byte-level Vocabulary so that decode() and the streaming detokenizer
// agree byte for byte.
//
// BOS (Llama 3.1 semantics): with addSpecialTokens the post-processor's
// prefix (<|begin_of_text|>) is added once; text that already starts with it,
// as a rendered chat template does, does not get a second one.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TokenizerLoader } from '@lenml/tokenizers';
import { ChatTemplate, chatTemplateFromConfig, NO_CHAT_TEMPLATE_MESSAGE, resolveChatTemplateOption } from './chat-template.js';
import { ChatTemplateError, TokenizerLoadError } from './errors.js';
import { readJsonObject, tokenizerJsonPath } from './json-file.js';
import { contentText, type ChatMessage } from './prompt.js';
import { Vocabulary, type TokenizerJson } from './vocabulary.js';

export interface TokenizerOptions {
  /** `--chat-template`: a file path or the template itself; replaces tokenizer_config.json's. */
  chatTemplate?: string;
}

export interface EncodeOptions {
  /** Add the post-processor's special tokens (BOS for Llama 3.x). Default true, as in HF. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out added tokens marked special. Default false, as in HF's decode. */
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** Append the assistant header so the model answers. Default true. */
  addGenerationPrompt?: boolean;
  /** The request's tools, as the template's `tools` (HF's apply_chat_template(tools=...)). */
  tools?: Record<string, unknown>[];
  /** Extra template variables (vLLM's chat_template_kwargs), e.g. { date_string: '01 Jan 2025' }. */
  templateKwargs?: Record<string, unknown>;
}

/** The minimal model of HF's PreTrainedTokenizer we use. */
interface EncoderBackend {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
}

export class Tokenizer {
  readonly vocab: Vocabulary;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  private readonly backend: EncoderBackend;
  private readonly prefix: number[];
  private readonly suffix: number[];
  private readonly chatTemplate: ChatTemplate | null;
  /** Special tokens handed to the chat template (bos_token, eos_token, ...). */
  private readonly templateTokens: Record<string, string>;

  /** Loads `dir`/tokenizer.json and `dir`/tokenizer_config.json. */
  static load(dir: string, options: TokenizerOptions = {}): Tokenizer {
    const jsonFile = tokenizerJsonPath(dir);
    const tokenizerJson = readJsonObject(jsonFile) as TokenizerJson;
    const configFile = join(dir, 'tokenizer_config.json');
    const config = existsSync(configFile) ? readJsonObject(configFile) : {};
    return new Tokenizer(tokenizerJson, config, options, jsonFile);
  }

  constructor(tokenizerJson: TokenizerJson, config: Record<string, unknown>, options: TokenizerOptions = {}, file = 'tokenizer.json') {
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null) throw new TokenizerLoadError(file, 'is not a JSON object');
    this.vocab = new Vocabulary(tokenizerJson, file);
    try {
      this.backend = TokenizerLoader.fromPreTrained({ tokenizerJSON: tokenizerJson as never, tokenizerConfig: config as never }) as unknown as EncoderBackend;
    } catch (error) {
      throw new TokenizerLoadError(file, `could not build the tokenizer: ${(error as Error).message}`, { cause: error });
    }
    this.templateTokens = {};
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const token = tokenString(config[key]);
      if (token !== null) this.templateTokens[key] = token;
    }
    this.bosToken = this.templateTokens['bos_token'] ?? null;
    this.eosToken = this.templateTokens['eos_token'] ?? null;
    this.bosTokenId = this.bosToken === null ? null : this.vocab.tokenToId(this.bosToken) ?? null;
    this.eosTokenId = this.eosToken === null ? null : this.vocab.tokenToId(this.eosToken) ?? null;
    [this.prefix, this.suffix] = this.specialAffixes();
    const source = options.chatTemplate !== undefined ? resolveChatTemplateOption(options.chatTemplate) : chatTemplateFromConfig(config);
    this.chatTemplate = source === null ? null : new ChatTemplate(source);
  }

  /**
   * This tokenizer with another chat template (a file path or the template
   * itself, as --chat-template takes it); the vocabulary and encoder are shared.
   */
  withChatTemplate(chatTemplate: string): Tokenizer {
    const template = new ChatTemplate(resolveChatTemplateOption(chatTemplate));
    return Object.assign(Object.create(Tokenizer.prototype) as Tokenizer, this, { chatTemplate: template });
  }

  /** Number of token ids (one past the highest). */
  get vocabSize(): number {
    return this.vocab.size;
  }

  get specialTokenIds(): readonly number[] {
    return this.vocab.specialIds;
  }

  get hasChatTemplate(): boolean {
    return this.chatTemplate !== null;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = this.backend.encode(text, { add_special_tokens: false });
    if (options.addSpecialTokens ?? true) {
      const head = startsWith(ids, this.prefix) ? [] : this.prefix;
      const tail = endsWith(ids, this.suffix) ? [] : this.suffix;
      if (head.length || tail.length) return [...head, ...ids, ...tail];
    }
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    return this.vocab.decode(ids, options.skipSpecialTokens ?? false);
  }

  idToToken(id: number): string | undefined {
    return this.vocab.idToToken(id);
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.tokenToId(token);
  }

  /** The conversation rendered by the chat template, as a string (HF's apply_chat_template with tokenize=False). */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (!this.chatTemplate) throw new ChatTemplateError(NO_CHAT_TEMPLATE_MESSAGE);
    const plain = messages.map((m) => ({ ...m, content: contentText(m.content) }));
    return this.chatTemplate.render(plain, options.addGenerationPrompt ?? true, this.templateTokens, options.templateKwargs, options.tools);
  }

  /**
   * The conversation's token ids. The template writes <|begin_of_text|>
   * itself, so no special tokens are added (vLLM's default for chat).
   */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions & EncodeOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: options.addSpecialTokens ?? false });
  }

  /** What the post-processor puts before and after a sequence (e.g. [BOS] and []), found by encoding a probe both ways. */
  private specialAffixes(): [number[], number[]] {
    const probe = 'a';
    const plain = this.backend.encode(probe, { add_special_tokens: false });
    const full = this.backend.encode(probe, { add_special_tokens: true });
    for (let at = 0; at + plain.length <= full.length; at++) {
      if (plain.every((id, i) => full[at + i] === id)) return [full.slice(0, at), full.slice(at + plain.length)];
    }
    return [[], []];
  }
}

/** A special token in tokenizer_config.json: a string, or an AddedToken object with `content`. */
function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return null;
}

function startsWith(ids: readonly number[], head: readonly number[]): boolean {
  return head.length <= ids.length && head.every((id, i) => ids[i] === id);
}

function endsWith(ids: readonly number[], tail: readonly number[]): boolean {
  const off = ids.length - tail.length;
  return off >= 0 && tail.every((id, i) => ids[off + i] === id);
}
