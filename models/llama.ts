// A Llama 3.x model ready to run: weights loaded (weights.ts), the native
// model created with its paged KV cache, steps run off the JS thread.
//
//   const model = LlamaModel.load(dir, { dtype: 'bfloat16', numBlocks: 1024 });
//   const [r] = await model.step([{ tokens: prompt, cachedTokens: 0, blockTable: pages,
//                                   sample: { params: { temperature: 0 }, seed: 1, outputIndex: 0 } }]);
//   r.token  // the next token
//
// The caller owns the KV pages (which page a sequence uses); the model owns
// their memory. step() calls are queued and run one at a time; each runs as
// native async work (Napi::AsyncWorker) on the model's compute threads, so
// the event loop stays free during a long prefill.
import type { CollectiveRank } from '../native/collectives.js';
import type { LinkCollective } from '../native/link-collective.js';
import { loadNative, type NativeAddon } from '../native/index.js';
import type { NativeModelHandle, NativeModelStats, NativeStepInput, NativeStepOutput } from '../native/model-raw.js';
import { packStep, unpackStep, type SequenceResult, type SequenceStep } from './batch.js';
import { Checkpoint } from './checkpoint.js';
import type { GenerationConfig, LlamaConfig } from './config.js';
import { ModelOptionError } from './errors.js';
import { readKvScales } from './quantization/kv-scales.js';
import { resolveModelOptions, type KvCacheDtype, type ModelDtype, type ModelOptions, type ResolvedModelOptions } from './options.js';
import { ropeInverseFrequencies } from './rope.js';
import { validateSamplingParams } from './sampling.js';
import { loadShardWeights, type ModelShard } from './shard.js';
import { resolveFp8Source } from './quantization/fp8-weights.js';
import { loadWeights, type LoadedWeights } from './weights.js';

/** A rank of a tensor / pipeline group (models/shard.ts): its share, and its tensor group when tpSize > 1. */
export interface RankParallelism {
  shard: ModelShard;
  /** Shared memory when the group's ranks share a machine, the node link otherwise (same bits). */
  group?: CollectiveRank | LinkCollective;
  collectiveTimeoutMs?: number;
}

export interface KvCacheInfo {
  /** 'auto': the mode's dtype; fp8 ones hold one byte per element. */
  dtype: KvCacheDtype;
  blockSize: number;
  numBlocks: number;
  /** Bytes of all layers' pages. */
  bytes: number;
}

export class LlamaModel {
  readonly dir: string;
  readonly config: LlamaConfig;
  readonly generationConfig: GenerationConfig;
  readonly options: ResolvedModelOptions;
  readonly kvCache: KvCacheInfo;
  /** Bytes of anonymous native memory holding the weights. */
  readonly residentWeightBytes: number;
  /** Bytes of weights read in place through file mappings (weightMemory 'mmap'). */
  readonly mappedWeightBytes: number;
  /** Things the load did that a user should know (e.g. FP8 KV cache scales defaulted to 1.0); also printed. */
  readonly warnings: string[] = [];
  private handle: NativeModelHandle | undefined;
  private readonly native: NativeAddon;
  private queue: Promise<unknown> = Promise.resolve();
  // Kept referenced here too: the native model reads them for its whole life.
  private readonly weights: LoadedWeights;

  readonly parallel: RankParallelism | undefined;

  private constructor(ckpt: Checkpoint, options: ResolvedModelOptions, native: NativeAddon, parallel?: RankParallelism) {
    this.dir = ckpt.dir;
    this.config = ckpt.config;
    this.generationConfig = ckpt.generationConfig;
    this.options = options;
    this.native = native;
    const c = ckpt.config;
    this.parallel = parallel;
    const fp8 = resolveFp8Source(ckpt, options.quantization);
    if (fp8.kind !== 'none' && options.dtype !== 'bfloat16')
      throw new ModelOptionError('--dtype', `FP8 weights (${fp8.kind === 'online' ? '--quantization fp8' : fp8.scheme.method}) run in bfloat16 mode, not ${options.dtype}`);
    this.weights = parallel ? loadShardWeights(ckpt, options.dtype, native, parallel.shard, fp8) : loadWeights(ckpt, options.dtype, native, options.weightMemory, fp8);
    const sh = parallel?.shard;
    const n = (r: [number, number] | undefined, whole: number) => (r ? r[1] - r[0] : whole);
    this.residentWeightBytes = this.weights.residentBytes;
    this.mappedWeightBytes = this.weights.mappedBytes;
    const kvScales = options.kvCacheDtype === 'auto' ? undefined : readKvScales(ckpt, options.kvCacheDtype);
    if (kvScales?.warning) {
      this.warnings.push(kvScales.warning);
      console.warn(`warning: ${kvScales.warning}`);
    }
    const invFreq = Float32Array.from(ropeInverseFrequencies(c.headDim, c.ropeTheta, c.ropeScaling));
    this.handle = native.model.modelCreate({
      isa: options.isa ?? native.selectedIsa(), // TROUPE_ISA, else the best path
      threads: options.threads,
      dtype: options.dtype,
      hidden: c.hiddenSize,
      layers: n(sh?.layers, c.numLayers),
      heads: n(sh?.heads, c.numHeads),
      kvHeads: n(sh?.kvHeads, c.numKvHeads),
      headDim: c.headDim,
      intermediate: n(sh?.ffn, c.intermediateSize),
      vocab: c.vocabSize,
      rmsEps: c.rmsNormEps,
      invFreq,
      blockSize: options.blockSize,
      numBlocks: options.numBlocks,
      kvCacheDtype: options.kvCacheDtype,
      ...(kvScales ? { kScales: kvScales.k, vScales: kvScales.v } : {}),
      maxBatchTokens: options.maxNumBatchedTokens,
      maxSeqs: options.maxNumSeqs,
      embed: this.weights.embed,
      lmHead: this.weights.lmHead,
      finalNorm: this.weights.finalNorm,
      layerWeights: this.weights.layerWeights,
      ...(sh ? { shard: {
        tpSize: sh.tpSize, tpRank: sh.tpRank, vocabStart: sh.vocab[0], vocabEnd: sh.vocab[1], embeds: sh.embeds, lmHead: sh.lmHead,
        ...(parallel!.group ? { group: parallel!.group.nativeHandle() } : {}),
        ...(parallel!.collectiveTimeoutMs !== undefined ? { collectiveTimeoutMs: parallel!.collectiveTimeoutMs } : {}),
      } } : {}),
    });
    const stats = native.model.modelStats(this.handle);
    this.kvCache = { dtype: options.kvCacheDtype, blockSize: options.blockSize, numBlocks: options.numBlocks, bytes: stats.kvCacheBytes };
  }

  /** Opens an HF directory and loads it (throws ModelLoadError / ModelOptionError). */
  static load(dir: string, options: ModelOptions = {}, parallel?: RankParallelism): LlamaModel {
    const ckpt = Checkpoint.open(dir);
    const resolved = resolveModelOptions(options, ckpt.config);
    return new LlamaModel(ckpt, resolved, loadNative(), parallel);
  }

  get dtype(): ModelDtype {
    return this.options.dtype;
  }

  /** Runs one step for these sequences; results in the same order. */
  step(seqs: SequenceStep[]): Promise<SequenceResult[]> {
    for (const s of seqs) if (s.sample) validateSamplingParams(s.sample.params, this.config.vocabSize);
    const packed = packStep(seqs, this.options.blockSize);
    for (const s of seqs) {
      if (s.cachedTokens + s.tokens.length > this.options.maxModelLen)
        throw new RangeError(`a sequence of ${s.cachedTokens + s.tokens.length} tokens exceeds max model length ${this.options.maxModelLen}`);
    }
    return this.stepFlat(packed.input).then((out) => unpackStep(seqs, packed, out));
  }

  /** Runs one step of an already flat batch (what the engine's rank sends). */
  stepFlat(input: NativeStepInput): Promise<NativeStepOutput> {
    const run = this.queue.then(() => this.native.model.modelStep(this.live(), input));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Counters: steps, GEMM calls, weight bytes streamed, scratch high-water mark. */
  stats(): NativeModelStats {
    return this.native.model.modelStats(this.live());
  }

  /**
   * Runs `use` on the native model handle once no step is running (benchmarks: the probes
   * addon's modelFillKv fills the KV cache; the caller's page tables then "hold" it).
   */
  async betweenSteps(use: (handle: NativeModelHandle) => void): Promise<void> {
    await this.queue;
    use(this.live());
  }

  /** Frees the KV cache and the compute threads now (weights go with the last reference). */
  async close(): Promise<void> {
    await this.queue;
    if (this.handle) this.native.model.modelRelease(this.handle);
    this.handle = undefined;
  }

  private live(): NativeModelHandle {
    if (!this.handle) throw new Error(`model ${this.dir} is closed`);
    return this.handle;
  }
}
