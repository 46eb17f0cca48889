// Per-request sampling parameters (vLLM's names and defaults), their
// validation, and their packing into the parallel arrays the native sampler
// reads (native/src/sampling/sampling.h has the order of operations).
import type { SamplingArrays } from '../native/model-raw.js';

export interface SamplingParams {
  /** 0: greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 or -1: off. */
  topK?: number;
  /** Keep the smallest set of most likely tokens with this much mass; 1: off. */
  topP?: number;
  /** Keep tokens at least minP times as likely as the most likely; 0: off. */
  minP?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** > 1 discourages tokens seen in the prompt or output; 1: off. */
  repetitionPenalty?: number;
  /** Added to the logits of these token ids (at most MAX_LOGIT_BIAS_ENTRIES). */
  logitBias?: Record<number, number>;
  /** Top-n raw log-probabilities to return with each sampled token. */
  logprobs?: number;
  /** Seed of the request's counter-based random numbers. */
  seed?: number;
}

/**
 * A request's logit bias as the sampler reads it: ids[i] gets values[i] added
 * to its logit; ids ascending. Built once per request (logitBiasList), not
 * once per step.
 */
export interface LogitBiasList {
  ids: number[];
  values: number[];
}

/** One row to sample: params plus what the counter-based RNG and the penalties need. */
export interface SampleRequest {
  /** params.logitBias is read only where `logitBias` is absent. */
  params: SamplingParams;
  /** The request's logit bias, built once (logitBiasList). */
  logitBias?: LogitBiasList;
  /** Resolved seed (resolveSeed), fixed for the request's life so recompute reproduces it. */
  seed: number;
  /** Index of the token being sampled within the request's output (0 for the first). */
  outputIndex: number;
  /** Prompt tokens (repetition penalty). */
  promptTokens?: ArrayLike<number>;
  /** Output tokens so far (all penalties). */
  outputTokens?: ArrayLike<number>;
  /**
   * A grammar's token mask, ceil(V / 32) words: bit (id % 32) of word id / 32
   * set = token allowed (xgrammar's layout). Sampling, greedy included, and the
   * returned logprobs are then those of the masked distribution.
   */
  mask?: Uint32Array;
}

export const MAX_LOGPROBS = 20;
/** OpenAI's cap on logit_bias entries. */
export const MAX_LOGIT_BIAS_ENTRIES = 300;

/** A sampling parameter out of range: `field` names it, `detail` says what it must be. */
export class InvalidSamplingParamError extends RangeError {
  override name = 'InvalidSamplingParamError';
  constructor(readonly field: keyof SamplingParams, readonly detail: string) {
    super(`sampling: ${detail}`);
  }
}

/** Throws InvalidSamplingParamError naming the first invalid field. */
export function validateSamplingParams(p: SamplingParams, vocabSize: number): void {
  const check = (ok: boolean, field: keyof SamplingParams, want: string, got: unknown, name: string = field): void => {
    if (!ok) throw new InvalidSamplingParamError(field, `${name} must be ${want}, got ${JSON.stringify(got)}`);
  };
  const t = p.temperature ?? 1;
  check(Number.isFinite(t) && t >= 0, 'temperature', 'a number >= 0', p.temperature);
  const k = p.topK ?? 0;
  check(Number.isInteger(k) && k >= -1, 'topK', '-1, 0 (off) or a positive integer', p.topK);
  const tp = p.topP ?? 1;
  check(tp > 0 && tp <= 1, 'topP', 'in (0, 1]', p.topP);
  const mp = p.minP ?? 0;
  check(mp >= 0 && mp <= 1, 'minP', 'in [0, 1]', p.minP);
  for (const f of ['presencePenalty', 'frequencyPenalty'] as const) {
    const v = p[f] ?? 0;
    check(v >= -2 && v <= 2, f, 'in [-2, 2]', p[f]);
  }
  const rp = p.repetitionPenalty ?? 1;
  check(Number.isFinite(rp) && rp > 0, 'repetitionPenalty', 'a number > 0', p.repetitionPenalty);
  if (p.logprobs !== undefined) check(Number.isInteger(p.logprobs) && p.logprobs >= 0 && p.logprobs <= MAX_LOGPROBS, 'logprobs', `an integer in [0, ${MAX_LOGPROBS}]`, p.logprobs);
  if (p.seed !== undefined) check(Number.isSafeInteger(p.seed) && p.seed >= 0, 'seed', 'a non-negative safe integer', p.seed);
  const biases = Object.entries(p.logitBias ?? {});
  check(biases.length <= MAX_LOGIT_BIAS_ENTRIES, 'logitBias', `at most ${MAX_LOGIT_BIAS_ENTRIES} entries`, `${biases.length} entries`);
  for (const [id, bias] of biases) {
    const n = Number(id);
    check(Number.isInteger(n) && n >= 0 && n < vocabSize, 'logitBias', `a token id in [0, ${vocabSize})`, id, 'logitBias key');
    check(Number.isFinite(bias) && bias >= -100 && bias <= 100, 'logitBias', 'in [-100, 100]', bias, `logitBias[${id}]`);
  }
}

/** The request's seed: its own, else a fresh random one (to be stored with the request). */
export function resolveSeed(p: SamplingParams): number {
  return p.seed ?? Math.floor(Math.random() * 2 ** 52);
}

/** A validated logit bias as the sampler's sparse list (ids ascending); null when it biases nothing. */
export function logitBiasList(bias: Record<number, number> | undefined): LogitBiasList | null {
  if (!bias) return null;
  const entries = Object.entries(bias).map(([id, value]) => [Number(id), value] as const).sort((a, b) => a[0] - b[0]);
  if (entries.length === 0) return null;
  return { ids: entries.map(([id]) => id), values: entries.map(([, value]) => value) };
}

function flat(lists: (ArrayLike<number> | undefined)[]): { values: Int32Array; offsets: Int32Array } {
  const offsets = new Int32Array(lists.length + 1);
  for (let i = 0; i < lists.length; i++) offsets[i + 1] = offsets[i]! + (lists[i]?.length ?? 0);
  const values = new Int32Array(offsets[lists.length]!);
  lists.forEach((l, i) => {
    if (l) values.set(Array.from(l), offsets[i]!);
  });
  return { values, offsets };
}

/** Packs R rows into the native sampler's arrays. Only rows with penalties carry token lists. */
export function packSampling(rows: SampleRequest[]): SamplingArrays {
  const R = rows.length;
  const a: SamplingArrays = {
    temperature: new Float32Array(R),
    topK: new Int32Array(R),
    topP: new Float32Array(R),
    minP: new Float32Array(R),
    presencePenalty: new Float32Array(R),
    frequencyPenalty: new Float32Array(R),
    repetitionPenalty: new Float32Array(R),
    seed: new Float64Array(R),
    outputIndex: new Float64Array(R),
    numLogprobs: new Int32Array(R),
    promptTokens: new Int32Array(0),
    promptOffsets: new Int32Array(R + 1),
    outputTokens: new Int32Array(0),
    outputOffsets: new Int32Array(R + 1),
    biasIds: new Int32Array(0),
    biasValues: new Float32Array(0),
    biasOffsets: new Int32Array(R + 1),
  };
  rows.forEach((row, i) => {
    const p = row.params;
    a.temperature[i] = p.temperature ?? 1;
    a.topK[i] = p.topK ?? 0;
    a.topP[i] = p.topP ?? 1;
    a.minP[i] = p.minP ?? 0;
    a.presencePenalty[i] = p.presencePenalty ?? 0;
    a.frequencyPenalty[i] = p.frequencyPenalty ?? 0;
    a.repetitionPenalty[i] = p.repetitionPenalty ?? 1;
    a.seed[i] = row.seed;
    a.outputIndex[i] = row.outputIndex;
    a.numLogprobs[i] = p.logprobs ?? -1;
  });
  const repetition = rows.map((r) => (r.params.repetitionPenalty ?? 1) !== 1);
  const outputNeeded = rows.map((r, i) => repetition[i] || (r.params.presencePenalty ?? 0) !== 0 || (r.params.frequencyPenalty ?? 0) !== 0);
  const prompt = flat(rows.map((r, i) => (repetition[i] ? r.promptTokens : undefined)));
  const output = flat(rows.map((r, i) => (outputNeeded[i] ? r.outputTokens : undefined)));
  a.promptTokens = prompt.values;
  a.promptOffsets = prompt.offsets;
  a.outputTokens = output.values;
  a.outputOffsets = output.offsets;
  const biases = rows.map((r) => r.logitBias ?? logitBiasList(r.params.logitBias) ?? undefined);
  const ids = flat(biases.map((b) => b?.ids));
  a.biasIds = ids.values;
  a.biasOffsets = ids.offsets;
  a.biasValues = new Float32Array(ids.values.length);
  biases.forEach((b, i) => {
    if (b) a.biasValues.set(b.values, ids.offsets[i]!);
  });
  // Rows without a grammar carry nothing: the fields are absent when no row has a mask.
  const masked = rows.filter((r) => r.mask !== undefined);
  if (masked.length > 0) {
    const words = masked[0]!.mask!.length;
    a.maskIndex = new Int32Array(R).fill(-1);
    a.masks = new Uint32Array(masked.length * words);
    let at = 0;
    rows.forEach((r, i) => {
      if (!r.mask) return;
      if (r.mask.length !== words) throw new RangeError(`sampling row ${i}: its mask has ${r.mask.length} words, another row's has ${words}`);
      a.masks!.set(r.mask, at * words);
      a.maskIndex![i] = at++;
    });
  }
  return a;
}
