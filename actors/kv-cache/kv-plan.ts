// Sizing the KV cache from a memory budget (--kv-cache-memory), as plain
// functions. The default budget is fixed and documented (DEFAULT_KV_CACHE_MEMORY),
// never "all free memory": a CPU engine shares its machine.
import type { LlamaConfig } from '../../models/config.js';
import { kvElementBytes, type KvCacheDtype, type ModelDtype } from '../../models/options.js';

export const DEFAULT_KV_CACHE_MEMORY = '2GiB';

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** Parses "2GiB", "512MiB", "1.5GB", "1000000" (bytes). */
export function parseMemory(text: string | number, option = '--kv-cache-memory'): number {
  if (typeof text === 'number') {
    if (Number.isFinite(text) && text > 0) return Math.floor(text);
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
    const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
    if (match && unit !== undefined && Number(match[1]) > 0) return Math.floor(Number(match[1]) * unit);
  }
  throw new RangeError(`${option}: cannot read "${text}" as a memory size; write e.g. 2GiB, 512MiB or 4GB`);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) {
    bytes /= 1024;
    i++;
  }
  return `${bytes.toFixed(bytes < 10 && i > 0 ? 2 : 1)} ${units[i]}`;
}

/** K and V of one token across all layers (bf16 in bfloat16 mode, fp32 in float32, one byte with an fp8 KV cache). */
export function kvBytesPerToken(config: LlamaConfig, dtype: ModelDtype, kvCacheDtype: KvCacheDtype = 'auto'): number {
  return config.numLayers * 2 * config.numKvHeads * config.headDim * kvElementBytes(dtype, kvCacheDtype);
}

export interface KvPlan {
  numBlocks: number;
  blockSize: number;
  tokens: number;
  bytes: number;
  maxModelLen: number;
  /** How many sequences of maxModelLen tokens fit at once. */
  maxConcurrency: number;
  /** The startup line: "KV cache: N tokens (B blocks of S); max concurrency X at max_model_len". */
  summary: string;
}

export interface KvPlanInput {
  config: LlamaConfig;
  dtype: ModelDtype;
  /** --kv-cache-dtype (default 'auto'): fp8 halves the bytes of a bf16 cache, so twice the tokens fit. */
  kvCacheDtype?: KvCacheDtype;
  memory: string | number;
  blockSize: number;
  /** Asked for with --max-model-len; undefined: the model's max_position_embeddings. */
  maxModelLen?: number;
}

/**
 * Splits the budget into blocks. With no --max-model-len the model's full
 * context is asked for; if one such sequence does not fit, max_model_len is
 * capped to what fits (saying so). If the user asked for a length that does
 * not fit, that is an error with the numbers and the flags to change.
 */
export function planKvCache(input: KvPlanInput): KvPlan & { capped?: string } {
  const bytes = parseMemory(input.memory);
  const perBlock = kvBytesPerToken(input.config, input.dtype, input.kvCacheDtype ?? 'auto') * input.blockSize;
  const numBlocks = Math.floor(bytes / perBlock);
  const tokens = numBlocks * input.blockSize;
  if (numBlocks < 1) {
    throw new RangeError(`--kv-cache-memory ${formatBytes(bytes)} holds no KV block (one block of ${input.blockSize} tokens needs ${formatBytes(perBlock)}); raise --kv-cache-memory`);
  }
  const wanted = input.maxModelLen ?? input.config.maxPositionEmbeddings;
  let maxModelLen = wanted;
  let capped: string | undefined;
  if (wanted > tokens) {
    if (input.maxModelLen !== undefined) {
      throw new RangeError(`--max-model-len ${wanted} needs ${formatBytes(Math.ceil(wanted / input.blockSize) * perBlock)} of KV cache for one sequence, ` +
        `but --kv-cache-memory ${formatBytes(bytes)} holds ${tokens} tokens; raise --kv-cache-memory or lower --max-model-len`);
    }
    maxModelLen = tokens;
    capped = `max_model_len capped from ${wanted} (max_position_embeddings) to ${tokens}: that is what --kv-cache-memory ${formatBytes(bytes)} holds; ` +
      `raise --kv-cache-memory for the full context`;
  }
  const maxConcurrency = tokens / maxModelLen;
  const summary = `KV cache${input.kvCacheDtype && input.kvCacheDtype !== 'auto' ? ` (${input.kvCacheDtype})` : ''}: ${tokens} tokens (${numBlocks} blocks of ${input.blockSize}), ${formatBytes(numBlocks * perBlock)}; ` +
    `max concurrency ${maxConcurrency.toFixed(2)}x at max_model_len ${maxModelLen}`;
  return { numBlocks, blockSize: input.blockSize, tokens, bytes: numBlocks * perBlock, maxModelLen, maxConcurrency, summary, ...(capped ? { capped } : {}) };
}
