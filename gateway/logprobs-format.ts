// Log-probabilities in OpenAI's two formats, from the engine's per-token
// records ({ token, logprob, top: [{ id, logprob }] }).
//
// Completions (legacy):  { tokens, token_logprobs, top_logprobs, text_offset }
//   top_logprobs[i] is a dict { token text: logprob } holding the chosen token
//   and the top n (so up to n + 1 entries, as OpenAI and vLLM do); the first
//   echoed prompt token has null / null. text_offset[i] is where token i
//   starts, counting the token texts before it (in code points, as Python's len).
// Chat:  { content: [{ token, logprob, bytes, top_logprobs: [{ token, logprob, bytes }] }], refusal: null }
//
// A token's text is its bytes read as UTF-8 (a token that is part of a
// character reads as U+FFFD); `bytes` are the token's own bytes, so a client
// can join a character split across tokens. -inf is sent as -9999.0, as vLLM does.
import type { TokenLogprobInfo } from '../actors/messages/rank.js';
import { newUtf8Decoder, type Vocabulary } from '../actors/tokenizer/vocabulary.js';

/** Text and bytes of single tokens. */
export interface TokenTexts {
  text(id: number): string;
  bytes(id: number): number[];
}

export function vocabularyTexts(vocab: Vocabulary): TokenTexts {
  const decoder = newUtf8Decoder();
  return {
    text: (id) => decoder.decode(vocab.tokenBytes(id)),
    bytes: (id) => Array.from(vocab.tokenBytes(id)),
  };
}

/** One position: the token there, its log-probability (null: none, the first prompt token) and the top entries. */
export interface PositionLogprob {
  token: number;
  logprob: number | null;
  top?: TokenLogprobInfo[];
}

export interface CompletionLogprobs {
  text_offset: number[];
  token_logprobs: (number | null)[];
  tokens: string[];
  top_logprobs: (Record<string, number> | null)[];
}

export interface ChatLogprobEntry {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

function clampLogprob(logprob: number): number {
  return Number.isNaN(logprob) ? -9999 : Math.max(logprob, -9999);
}

export function codePointLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++; // a surrogate pair counts once
  }
  return n;
}

/** Completions format; `initialOffset` is the text length already sent before these tokens. */
export function completionLogprobs(positions: PositionLogprob[], topN: number, texts: TokenTexts, initialOffset = 0): CompletionLogprobs {
  const out: CompletionLogprobs = { text_offset: [], token_logprobs: [], tokens: [], top_logprobs: [] };
  let offset = initialOffset;
  for (const p of positions) {
    const token = texts.text(p.token);
    out.tokens.push(token);
    out.text_offset.push(offset);
    offset += codePointLength(token);
    if (p.logprob === null) {
      out.token_logprobs.push(null);
      out.top_logprobs.push(null);
      continue;
    }
    out.token_logprobs.push(clampLogprob(p.logprob));
    const top: Record<string, number> = { [token]: clampLogprob(p.logprob) };
    for (const entry of (p.top ?? []).slice(0, topN)) {
      const text = texts.text(entry.id);
      if (!(text in top)) top[text] = clampLogprob(entry.logprob);
    }
    out.top_logprobs.push(top);
  }
  return out;
}

/** Chat format for generated tokens (each has a logprob). */
export function chatLogprobs(positions: PositionLogprob[], topN: number, texts: TokenTexts): { content: ChatLogprobEntry[]; refusal: null } {
  return {
    refusal: null,
    content: positions.map((p) => ({
      token: texts.text(p.token),
      logprob: clampLogprob(p.logprob ?? -Infinity),
      bytes: texts.bytes(p.token),
      top_logprobs: (p.top ?? []).slice(0, topN).map((e) => ({ token: texts.text(e.id), logprob: clampLogprob(e.logprob), bytes: texts.bytes(e.id) })),
    })),
  };
}

/** The engine's prompt log-probabilities (null for position 0) as positions of the prompt's tokens. */
export function promptPositions(promptTokenIds: number[], promptLogprobs: ({ logprob: number; top?: TokenLogprobInfo[] } | null)[] | undefined): PositionLogprob[] {
  return promptTokenIds.map((token, i) => {
    const entry = promptLogprobs?.[i] ?? null;
    return entry === null ? { token, logprob: null } : { token, logprob: entry.logprob, ...(entry.top ? { top: entry.top } : {}) };
  });
}
