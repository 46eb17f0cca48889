// Incremental detokenization of one request's output, as in vLLM.
//
// vLLM keeps a prefix offset and a read offset into the token list and
// re-decodes the window between them on every token, because a SentencePiece
// token's text depends on its neighbours. Llama 3's byte-level BPE does not:
// token i is fixed bytes (Vocabulary.tokenBytes), so the same state reduces to
//
//   readOffset   tokens consumed so far
//   decoder      a streaming UTF-8 decoder holding the bytes of a character
//                whose remaining bytes are still to come (an emoji is often
//                split over 2-3 tokens: no U+FFFD is ever emitted for it)
//   text         all complete text decoded so far (cut at a stop string)
//   sent         how much of `text` has gone out as deltas
//
// Deltas only ever append: with stop strings, the last (longest stop - 1)
// code units are held back until more text arrives or the request ends, so
// a stop string is never half sent. The deltas concatenated equal
// Vocabulary.decode of every token, cut at the stop string if one matched.
import type { TextDecoder } from 'node:util';
import { newUtf8Decoder, type Vocabulary } from '../tokenizer/vocabulary.js';
import { checkStopStrings, findStop, holdbackLength } from './stop-strings.js';

export interface DetokenizeParams {
  /** Leave special tokens (<|eot_id|>, ...) out of the text. Default true (vLLM's default). */
  skipSpecialTokens?: boolean;
  /** Stop strings: the text ends where the first of them completes. */
  stop?: string[];
  /** Keep the stop string at the end of the text. Default false. */
  includeStopStrInOutput?: boolean;
  /** Stop strings are not looked for until more than this many tokens were generated (vLLM's min_tokens). */
  minTokens?: number;
}

export interface DetokenizerUpdate {
  /** Text to send now (possibly empty). */
  delta: string;
  /**
   * The stop string that matched, or null. Once set it stays set and later
   * tokens are ignored: the caller finishes the request with reason 'stop'.
   */
  stop: string | null;
}

export class IncrementalDetokenizer {
  private readonly skipSpecialTokens: boolean;
  private readonly stops: string[];
  private readonly includeStop: boolean;
  private readonly minTokens: number;
  private readonly holdback: number;
  private readonly decoder: TextDecoder = newUtf8Decoder();
  private readOffset = 0;
  private text = '';
  private sent = 0;
  private matched: string | null = null;
  private ended = false;

  constructor(private readonly vocab: Vocabulary, params: DetokenizeParams = {}) {
    this.skipSpecialTokens = params.skipSpecialTokens ?? true;
    this.stops = checkStopStrings(params.stop ?? []);
    this.includeStop = params.includeStopStrInOutput ?? false;
    this.minTokens = params.minTokens ?? 0;
    if (!Number.isInteger(this.minTokens) || this.minTokens < 0) throw new RangeError(`minTokens must be a non-negative integer, got ${params.minTokens}`);
    this.holdback = holdbackLength(this.stops);
  }

  /** Tokens consumed so far (all of them, special ones included). */
  get numTokens(): number {
    return this.readOffset;
  }

  /** The text sent so far: the concatenation of every delta. */
  get output(): string {
    return this.text.slice(0, this.sent);
  }

  get stop(): string | null {
    return this.matched;
  }

  /** True after `final` or a stop: no more text will come. */
  get done(): boolean {
    return this.ended || this.matched !== null;
  }

  /**
   * Appends generated tokens and returns the text that can be sent. `final`
   * (the request finished: eos, length, abort) flushes everything held back,
   * an unfinished character included (as U+FFFD, like a full decode).
   */
  push(tokenIds: readonly number[], final = false): DetokenizerUpdate {
    if (this.done) return { delta: '', stop: this.matched };
    for (const id of tokenIds) {
      this.readOffset++;
      if (this.skipSpecialTokens && this.vocab.isSpecial(id)) continue;
      const bytes = this.vocab.tokenBytes(id);
      if (bytes.length === 0) continue;
      if (this.append(this.decoder.decode(bytes, { stream: true }))) break;
    }
    if (final && this.matched === null) {
      this.append(this.decoder.decode());
      this.ended = true;
    }
    return { delta: this.release(), stop: this.matched };
  }

  /** The request finished: flushes what was held back. */
  finish(): DetokenizerUpdate {
    return this.push([], true);
  }

  /** Adds decoded text and looks for a stop string ending in it; true if one did (the text is then cut). */
  private append(piece: string): boolean {
    if (piece.length === 0) return false;
    const newStart = this.text.length;
    this.text += piece;
    if (this.stops.length === 0 || this.readOffset <= this.minTokens) return false;
    const match = findStop(this.text, newStart, this.stops);
    if (!match) return false;
    // The match starts at or after newStart - (longest stop - 1), which is
    // never before `sent`: the held-back tail covers it.
    this.text = this.text.slice(0, this.includeStop ? match.end : match.start);
    this.matched = match.stop;
    return true;
  }

  /** Moves the send mark as far as is safe and returns the text it passed. */
  private release(): string {
    let upTo = this.text.length;
    if (!this.done) {
      upTo -= this.holdback;
      // Never split a surrogate pair between two deltas.
      if (upTo > 0 && upTo < this.text.length && isHighSurrogate(this.text.charCodeAt(upTo - 1))) upTo--;
    }
    if (upTo <= this.sent) return '';
    const delta = this.text.slice(this.sent, upTo);
    this.sent = upTo;
    return delta;
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
