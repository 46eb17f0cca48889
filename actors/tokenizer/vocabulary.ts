// The decode side of a byte-level BPE tokenizer: each token id stands for
// fixed bytes, so decoding is "concatenate the bytes, then read UTF-8". That
// is all the detokenizer needs, without the merges or the pre-tokenizer, so it
// loads in a fraction of the full tokenizer's time.
//
//   data[offsets[id] .. offsets[id + 1])   the bytes of token `id`
//   special[id] = 1                        an added token marked "special"
//                                          (dropped by skip_special_tokens)
//
// Added tokens (<|begin_of_text|>, <|eot_id|>, ...) stand for their content's
// UTF-8 bytes. Ids with no token (beyond the tokenizer's vocabulary, e.g. a
// model whose embedding is padded) decode to nothing, as in vLLM.
//
// No clean-up of spaces before punctuation is applied, although Llama 3.1's
// tokenizer_config.json asks HF's decode for it: vLLM's streamed text does not
// apply it either, and decode must equal the concatenated stream.
import { TextDecoder, TextEncoder } from 'node:util';
import { writeByteLevel } from './byte-level.js';
import { TokenizerLoadError } from './errors.js';
import { readJsonObject, tokenizerJsonPath } from './json-file.js';

/** The parts of tokenizer.json the vocabulary reads. */
export interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number> };
  decoder?: { type?: string } | null;
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

const utf8 = new TextEncoder();

export class Vocabulary {
  /** One past the highest token id. */
  readonly size: number;
  private readonly data: Uint8Array;
  private readonly offsets: Uint32Array;
  private readonly special: Uint8Array;
  private readonly tokens: (string | undefined)[];
  private readonly ids: Map<string, number>;
  /** Ids of the added tokens marked special, ascending. */
  readonly specialIds: readonly number[];

  /** Reads `dir`/tokenizer.json. */
  static load(dir: string): Vocabulary {
    const file = tokenizerJsonPath(dir);
    return new Vocabulary(readJsonObject(file) as TokenizerJson, file);
  }

  /** `file` names tokenizer.json in errors. */
  constructor(json: TokenizerJson, file = 'tokenizer.json') {
    const model = json.model;
    if (!model || model.type !== 'BPE' || typeof model.vocab !== 'object' || model.vocab === null) {
      throw new TokenizerLoadError(file, `model.type is ${JSON.stringify(model?.type)}; Troupe supports byte-level BPE tokenizers (Llama 3.x) only`);
    }
    if (json.decoder?.type !== 'ByteLevel') {
      throw new TokenizerLoadError(file, `decoder is ${JSON.stringify(json.decoder?.type)}, not ByteLevel; Troupe supports byte-level BPE tokenizers (Llama 3.x) only`);
    }
    const added = json.added_tokens ?? [];
    const vocab = Object.entries(model.vocab);
    let size = 0;
    for (const [, id] of vocab) size = Math.max(size, id + 1);
    for (const token of added) size = Math.max(size, token.id + 1);
    this.size = size;

    // Token strings by id; an added token overrides a vocab entry with the same id.
    this.tokens = new Array<string | undefined>(size);
    this.special = new Uint8Array(size);
    for (const [token, id] of vocab) this.tokens[id] = token;
    const addedBytes = new Map<number, Uint8Array>();
    const specialIds: number[] = [];
    for (const token of added) {
      this.tokens[token.id] = token.content;
      addedBytes.set(token.id, utf8.encode(token.content));
      if (token.special) {
        this.special[token.id] = 1;
        specialIds.push(token.id);
      }
    }
    this.specialIds = specialIds.sort((a, b) => a - b);

    // A byte-level token string has one character per byte.
    this.offsets = new Uint32Array(size + 1);
    let total = 0;
    for (let id = 0; id < size; id++) {
      this.offsets[id] = total;
      total += addedBytes.get(id)?.length ?? this.tokens[id]?.length ?? 0;
    }
    this.offsets[size] = total;
    this.data = new Uint8Array(total);
    this.ids = new Map();
    for (let id = 0; id < size; id++) {
      const token = this.tokens[id];
      if (token === undefined) continue;
      this.ids.set(token, id);
      const bytes = addedBytes.get(id);
      if (bytes) this.data.set(bytes, this.offsets[id]!);
      else if (!writeByteLevel(token, this.data, this.offsets[id]!)) {
        throw new TokenizerLoadError(file, `vocabulary token ${JSON.stringify(token)} (id ${id}) has a character outside the byte-level alphabet`);
      }
    }
  }

  /** The bytes token `id` stands for (empty for an id with no token). A view: do not modify. */
  tokenBytes(id: number): Uint8Array {
    if (!this.has(id)) return EMPTY;
    return this.data.subarray(this.offsets[id]!, this.offsets[id + 1]!);
  }

  /** An id that names a token (integer in [0, size) with an entry). */
  has(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.size && this.tokens[id] !== undefined;
  }

  isSpecial(id: number): boolean {
    return this.has(id) && this.special[id] === 1;
  }

  /** The token string (byte-level form, e.g. "ĠHello", or an added token's content), like HF's convert_ids_to_tokens. */
  idToToken(id: number): string | undefined {
    return this.has(id) ? this.tokens[id] : undefined;
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  /** The bytes of `ids` concatenated, special tokens left out when asked. */
  decodeBytes(ids: readonly number[], skipSpecialTokens: boolean): Uint8Array {
    let length = 0;
    for (const id of ids) if (!(skipSpecialTokens && this.isSpecial(id))) length += this.tokenBytes(id).length;
    const out = new Uint8Array(length);
    let at = 0;
    for (const id of ids) {
      if (skipSpecialTokens && this.isSpecial(id)) continue;
      const b = this.tokenBytes(id);
      out.set(b, at);
      at += b.length;
    }
    return out;
  }

  /** Text of `ids`: invalid or unfinished UTF-8 becomes U+FFFD, as with HF and vLLM. */
  decode(ids: readonly number[], skipSpecialTokens: boolean): string {
    return newUtf8Decoder().decode(this.decodeBytes(ids, skipSpecialTokens));
  }
}

const EMPTY = new Uint8Array(0);

/** A UTF-8 decoder that keeps a leading U+FEFF (a token may well be a BOM) and replaces bad bytes. */
export function newUtf8Decoder(): TextDecoder {
  return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
}
