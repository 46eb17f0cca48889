// Model options as the CLI and the future `serve` take them (vLLM's names),
// validated and resolved against a checkpoint's config. Policy only: no I/O.
import { usableCores } from './cores.js';
import type { Isa } from '../native/index.js';
import type { LlamaConfig } from './config.js';
import { ModelOptionError } from './errors.js';

/** Arithmetic mode of the forward pass (DESIGN.md, Numerics). */
export type ModelDtype = 'bfloat16' | 'float32';

export interface ModelOptions {
  /** --dtype: 'auto' (default: bfloat16 for bf16 / fp16 checkpoints, float32 for fp32 ones), 'bfloat16' / 'bf16', 'float32' / 'fp32'. */
  dtype?: string;
  /** --cpu-offload-gb: belongs to a GPU backend, which Troupe lacks; anything but 0 is refused. */
  cpuOffloadGb?: number;
  /** Compute threads (default: the cores this process may use: its CPU affinity, capped by a cgroup CPU quota). */
  threads?: number;
  /** Kernel path (default: TROUPE_ISA, else the best the CPU has). */
  isa?: Isa;
  /**
   * --block-size: token slots per KV page (default 32: the fastest size in
   * `npm run bench:attention` and `npm run bench:model -- --block-size N --prefill-len 2048
   * --context 512`; native/README.md has the figures).
   */
  blockSize?: number;
  /** KV pages (default: enough for one sequence of maxModelLen tokens). */
  numBlocks?: number;
  /** --max-model-len (default: max_position_embeddings, at most 16384 unless given). */
  maxModelLen?: number;
  /**
   * --max-num-batched-tokens: tokens of the largest step expected (default 2048). Sizes the
   * native scratch arena at load; a larger step still runs (the arena grows, counted in stats).
   */
  maxNumBatchedTokens?: number;
  /** --max-num-seqs: sequences of the largest step expected (default 256); sizes the sampled-logits scratch. */
  maxNumSeqs?: number;
  /**
   * Where weights live: 'anonymous' (default: read into aligned anonymous
   * memory) or 'mmap' (tensors used as stored are read through a file
   * mapping; fused and converted ones are still copied). File-mapped reads
   * measured slower and erratic on these machines.
   */
  weightMemory?: WeightMemory;
  /**
   * --quantization: 'fp8' quantizes a bf16 / fp16 / fp32 checkpoint's decoder linears to FP8 e4m3
   * at load (per-channel scales, dynamic per-token activations; the lm head stays bf16). FP8
   * checkpoints load in their own format without it; given, it must name their quant_method
   * ('fp8', 'fbgemm_fp8', 'compressed-tensors').
   */
  quantization?: string;
  /**
   * --kv-cache-dtype: 'auto' (the mode's dtype), 'fp8' / 'fp8_e4m3' (one byte per element, scaled
   * by the checkpoint's per-layer k_scale / v_scale, 1.0 with a warning when it has none) or
   * 'fp8_e5m2' (unscaled).
   */
  kvCacheDtype?: string;
}

/** The KV cache's element type: the mode's dtype, or one byte per element. */
export type KvCacheDtype = 'auto' | 'fp8_e4m3' | 'fp8_e5m2';

export function resolveKvCacheDtype(text: string | undefined): KvCacheDtype {
  switch (text ?? 'auto') {
    case 'auto':
      return 'auto';
    case 'fp8':
    case 'fp8_e4m3':
      return 'fp8_e4m3';
    case 'fp8_e5m2':
      return 'fp8_e5m2';
    default:
      throw new ModelOptionError('--kv-cache-dtype', `unknown KV cache dtype '${text}' (expected auto, fp8, fp8_e4m3 or fp8_e5m2)`);
  }
}

/** Bytes of one KV cache element. */
export function kvElementBytes(dtype: ModelDtype, kv: KvCacheDtype): number {
  return kv !== 'auto' ? 1 : dtype === 'bfloat16' ? 2 : 4;
}

export type WeightMemory = 'anonymous' | 'mmap';

export interface ResolvedModelOptions {
  dtype: ModelDtype;
  threads: number;
  isa: Isa | undefined;
  blockSize: number;
  numBlocks: number;
  maxModelLen: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  weightMemory: WeightMemory;
  /** --quantization as given (checked against the checkpoint at load: quantization/fp8-weights.ts). */
  quantization: string | undefined;
  kvCacheDtype: KvCacheDtype;
}

const DEFAULT_MAX_MODEL_LEN = 16384;
/** KV page size when none is given (see ModelOptions.blockSize for how it was chosen). */
export const DEFAULT_BLOCK_SIZE = 32;

/** Throws ModelOptionError for an option Troupe cannot honour. */
export function validateCpuOffload(cpuOffloadGb: number | undefined): void {
  if (cpuOffloadGb === undefined || cpuOffloadGb === 0) return;
  if (!Number.isFinite(cpuOffloadGb) || cpuOffloadGb < 0) throw new ModelOptionError('--cpu-offload-gb', `must be a non-negative number of GiB, got ${cpuOffloadGb}`);
  throw new ModelOptionError(
    '--cpu-offload-gb',
    `offloads GPU weights to CPU memory, and Troupe has no GPU backend yet: every weight already lives in CPU memory. Remove the option (got ${cpuOffloadGb}).`,
  );
}

export function resolveDtype(dtype: string | undefined, config: LlamaConfig): ModelDtype {
  switch (dtype ?? 'auto') {
    case 'auto':
      return config.torchDtype === 'float32' ? 'float32' : 'bfloat16';
    case 'bfloat16':
    case 'bf16':
      return 'bfloat16';
    case 'float32':
    case 'fp32':
      return 'float32';
    case 'float16':
    case 'half':
    case 'fp16':
      throw new ModelOptionError('--dtype', `${dtype} arithmetic is not supported on CPU (no fp16 instructions); fp16 checkpoints load as bfloat16 by default, or use float32`);
    default:
      throw new ModelOptionError('--dtype', `unknown dtype '${dtype}' (expected auto, bfloat16, float32)`);
  }
}

function positiveInt(option: string, v: number | undefined, fallback: number): number {
  const x = v ?? fallback;
  if (!Number.isInteger(x) || x <= 0) throw new ModelOptionError(option, `must be a positive integer, got ${v}`);
  return x;
}

export function resolveModelOptions(options: ModelOptions, config: LlamaConfig): ResolvedModelOptions {
  validateCpuOffload(options.cpuOffloadGb);
  const dtype = resolveDtype(options.dtype, config);
  const blockSize = positiveInt('--block-size', options.blockSize, DEFAULT_BLOCK_SIZE);
  if (blockSize > 256) throw new ModelOptionError('--block-size', `must be at most 256, got ${blockSize}`);
  const maxModelLen = positiveInt('--max-model-len', options.maxModelLen, Math.min(config.maxPositionEmbeddings, DEFAULT_MAX_MODEL_LEN));
  if (maxModelLen > config.maxPositionEmbeddings)
    throw new ModelOptionError('--max-model-len', `${maxModelLen} exceeds the model's max_position_embeddings (${config.maxPositionEmbeddings})`);
  const numBlocks = positiveInt('numBlocks', options.numBlocks, Math.ceil(maxModelLen / blockSize) + 1);
  const threads = positiveInt('threads', options.threads, usableCores());
  const maxNumBatchedTokens = positiveInt('--max-num-batched-tokens', options.maxNumBatchedTokens, 2048);
  const maxNumSeqs = positiveInt('--max-num-seqs', options.maxNumSeqs, 256);
  const weightMemory = options.weightMemory ?? 'anonymous';
  if (weightMemory !== 'anonymous' && weightMemory !== 'mmap') throw new ModelOptionError('weightMemory', `must be 'anonymous' or 'mmap', got '${weightMemory}'`);
  const quantization = options.quantization === 'none' ? undefined : options.quantization;
  if (quantization !== undefined && dtype === 'float32')
    throw new ModelOptionError('--quantization', `FP8 weights run in bfloat16 mode (their GEMM multiplies bf16 values); drop --dtype float32 or --quantization ${quantization}`);
  const kvCacheDtype = resolveKvCacheDtype(options.kvCacheDtype);
  return { dtype, threads, isa: options.isa, blockSize, numBlocks, maxModelLen, maxNumBatchedTokens, maxNumSeqs, weightMemory, quantization, kvCacheDtype };
}
