// Tensor and pipeline parallelism as a pass over the model's weights: which
// slice of each tensor a rank holds, read straight from the checkpoint (a
// rank never loads the rest). native/src/model/model_parallel.h has the arithmetic.
//
//   tensor             full shape       rank r of tp holds
//   q/k/v_proj         [heads D, H]     rows of its q heads / kv heads (kv replicated when tp > kv heads)
//   gate/up_proj       [I, H]           rows [I r / tp, I (r+1) / tp)
//   o_proj             [H, heads D]     columns of its q heads,   segment-major when tp > 1:
//   down_proj          [H, I]           columns of its MLP slice, [seg j: H x k_j] one after another
//   embed / lm_head    [V, H]           rows of its vocab slice (first / last stage only)
//   norms              [H]              whole
// Layers: only [first, last) of the rank's pipeline stage.
//
// FP8 linears (quantization/fp8-weights.ts) take the same slices of their
// e4m3 codes: rows with their per-channel scales for q/k/v, gate/up and the
// lm head; columns, segment-major, for o / down, whose scales (one per output
// row) every rank holds whole.
import type { NativeAddon } from '../native/index.js';
import type { NativeLinear, NativeModelDesc } from '../native/model-raw.js';
import type { Checkpoint } from './checkpoint.js';
import type { LlamaConfig } from './config.js';
import type { ModelDtype } from './options.js';
import { loadFp8Linear, type Fp8Source, type LinearPart } from './quantization/fp8-weights.js';
import { readTensorInto, type TensorEntry } from './safetensors.js';
import type { LoadedWeights, WeightArray } from './weights.js';

/** K segments of the row-parallel sums (native kRowSegments). */
const ROW_SEGMENTS = 8;

export type Range = [number, number];

/** One rank's share of the model (topology/plan.ts's RankPlan says which). */
export interface ModelShard {
  tpSize: number;
  tpRank: number;
  layers: Range;
  heads: Range;
  kvHeads: Range;
  ffn: Range;
  vocab: Range;
  /** First pipeline stage: embeds the tokens. */
  embeds: boolean;
  /** Last pipeline stage: final norm, lm head, sampling. */
  lmHead: boolean;
}

/** Checks a shard against the config; throws RangeError naming what is wrong. */
function validateShard(s: ModelShard, c: LlamaConfig): void {
  const within = (name: string, [a, b]: Range, total: number) => {
    if (!(Number.isInteger(a) && Number.isInteger(b) && 0 <= a && a < b && b <= total)) throw new RangeError(`shard ${name} [${a}, ${b}) is not a non-empty range of 0..${total}`);
  };
  if (![1, 2, 4, 8].includes(s.tpSize)) throw new RangeError(`shard tpSize ${s.tpSize} must divide the ${ROW_SEGMENTS} row-parallel segments: use 1, 2, 4 or 8`);
  within('layers', s.layers, c.numLayers);
  within('heads', s.heads, c.numHeads);
  within('kvHeads', s.kvHeads, c.numKvHeads);
  within('ffn', s.ffn, c.intermediateSize);
  within('vocab', s.vocab, c.vocabSize);
  const q = s.heads[1] - s.heads[0], kv = s.kvHeads[1] - s.kvHeads[0];
  if (q % kv !== 0) throw new RangeError(`shard holds ${q} q heads for ${kv} kv heads; they must form whole GQA groups`);
  const group = c.numHeads / c.numKvHeads;
  if (Math.floor(s.heads[0] / group) !== s.kvHeads[0]) throw new RangeError(`shard q heads from ${s.heads[0]} belong to kv head ${Math.floor(s.heads[0] / group)}, not ${s.kvHeads[0]}`);
}

/** Local column range [begin, end) of segment j of a row-parallel matrix with kLocal columns here (model_parallel.h). */
function localSegment(tpSize: number, tpRank: number, kLocal: number, j: number): Range {
  const K = kLocal * tpSize, first = Math.floor((K * tpRank) / tpSize), g = tpRank * (ROW_SEGMENTS / tpSize) + j;
  return [Math.floor((K * g) / ROW_SEGMENTS) - first, Math.floor((K * (g + 1)) / ROW_SEGMENTS) - first];
}

class Arena {
  residentBytes = 0;
  constructor(private readonly native: NativeAddon, private readonly dtype: ModelDtype) {}
  matrix(elements: number): WeightArray {
    const bytes = elements * (this.dtype === 'bfloat16' ? 2 : 4);
    this.residentBytes += bytes;
    const buf = this.native.model.allocAligned(bytes);
    return this.dtype === 'bfloat16' ? new Uint16Array(buf) : new Float32Array(buf);
  }
  vector(elements: number): Float32Array {
    this.residentBytes += elements * 4;
    return new Float32Array(this.native.model.allocAligned(elements * 4));
  }
  bytes(n: number): ArrayBuffer {
    this.residentBytes += n;
    return this.native.model.allocAligned(n);
  }
}

const width = ([a, b]: Range) => b - a;

/** Row slices of several tensors, one after another. */
function rows(arena: Arena, parts: [TensorEntry, Range][]): WeightArray {
  const cols = parts[0]![0].shape[1]!;
  const out = arena.matrix(parts.reduce((n, [, r]) => n + width(r) * cols, 0));
  let offset = 0;
  for (const [entry, r] of parts) offset += readTensorInto(entry, out, offset, { rows: r });
  return out;
}

/** How a rank stores its k local columns of a row-parallel matrix: one block at tp 1, its segments otherwise ([begin, end) local). */
function localSegments(s: ModelShard, k: number): Range[] {
  if (s.tpSize === 1) return [[0, k]];
  return Array.from({ length: ROW_SEGMENTS / s.tpSize }, (_, j) => localSegment(s.tpSize, s.tpRank, k, j));
}

/** Columns `cols` of a row-parallel [N, K] matrix: as they are at tp 1, segment by segment otherwise. */
function rowParallel(arena: Arena, entry: TensorEntry, cols: Range, s: ModelShard): WeightArray {
  const N = entry.shape[0]!;
  const out = arena.matrix(N * width(cols));
  for (const [b, e] of localSegments(s, width(cols))) readTensorInto(entry, out, N * b, { cols: [cols[0] + b, cols[0] + e] });
  return out;
}

/**
 * Reads only this shard's slices (see the table above) into aligned anonymous
 * memory; linears FP8 where `fp8` says so (as weights.ts: the lm head only when
 * the checkpoint stores it FP8).
 */
export function loadShardWeights(ckpt: Checkpoint, dtype: ModelDtype, native: NativeAddon, s: ModelShard, fp8: Fp8Source = { kind: 'none' }): LoadedWeights {
  const c = ckpt.config;
  validateShard(s, c);
  const H = c.hiddenSize, D = c.headDim, I = c.intermediateSize, V = c.vocabSize;
  const arena = new Arena(native, dtype);
  /** A column-parallel linear: these rows of its parts, fused. */
  const columnParallel = (parts: (LinearPart & { rows: Range })[]): NativeLinear =>
    loadFp8Linear(ckpt, fp8, parts, arena, native) ?? rows(arena, parts.map((p): [TensorEntry, Range] => [ckpt.tensor(`${p.module}.weight`, p.shape), p.rows]));
  /** A row-parallel linear: columns `cols`, stored as localSegments says. */
  const rowParallelLinear = (module: string, shape: [number, number], cols: Range): NativeLinear =>
    loadFp8Linear(ckpt, fp8, [{ module, shape }], arena, native, { cols, segments: localSegments(s, width(cols)) }) ??
    rowParallel(arena, ckpt.tensor(`${module}.weight`, shape), cols, s);
  const norm = (name: string): Float32Array => {
    const v = arena.vector(H);
    readTensorInto(ckpt.tensor(name, [H]), v);
    return v;
  };
  const empty = dtype === 'bfloat16' ? new Uint16Array(0) : new Float32Array(0);
  const embedEntry = ckpt.tensor('model.embed_tokens.weight', [V, H]);
  const embed = s.embeds ? rows(arena, [[embedEntry, s.vocab]]) : empty;
  let lmHead: NativeLinear = empty;
  if (s.lmHead) {
    if (c.tieWordEmbeddings) lmHead = s.embeds ? embed : rows(arena, [[embedEntry, s.vocab]]);
    else if (fp8.kind === 'online') lmHead = rows(arena, [[ckpt.tensor('lm_head.weight', [V, H]), s.vocab]]);
    else lmHead = columnParallel([{ module: 'lm_head', shape: [V, H], rows: s.vocab }]);
  }
  const qRows: Range = [s.heads[0] * D, s.heads[1] * D];
  const kvRows: Range = [s.kvHeads[0] * D, s.kvHeads[1] * D];
  const layerWeights: NativeModelDesc['layerWeights'] = [];
  for (let l = s.layers[0]; l < s.layers[1]; l++) {
    const p = `model.layers.${l}.`;
    layerWeights.push({
      inputNorm: norm(`${p}input_layernorm.weight`),
      qkv: columnParallel([
        { module: `${p}self_attn.q_proj`, shape: [c.numHeads * D, H], rows: qRows },
        { module: `${p}self_attn.k_proj`, shape: [c.numKvHeads * D, H], rows: kvRows },
        { module: `${p}self_attn.v_proj`, shape: [c.numKvHeads * D, H], rows: kvRows },
      ]),
      o: rowParallelLinear(`${p}self_attn.o_proj`, [H, c.numHeads * D], qRows),
      postNorm: norm(`${p}post_attention_layernorm.weight`),
      gateUp: columnParallel([{ module: `${p}mlp.gate_proj`, shape: [I, H], rows: s.ffn }, { module: `${p}mlp.up_proj`, shape: [I, H], rows: s.ffn }]),
      down: rowParallelLinear(`${p}mlp.down_proj`, [H, I], s.ffn),
    });
  }
  const finalNorm = norm('model.norm.weight');
  return { embed, lmHead, finalNorm, layerWeights, residentBytes: arena.residentBytes, mappedBytes: 0 };
}

/** A rank of topology/plan.ts's plan (built with the model, so its shards are set) as a ModelShard. */
export function shardOfRank(rank: {
  tpRank: number; layers: Range; heads?: Range; kvHeads?: Range; ffn?: Range; vocab?: Range; holdsEmbedding: boolean; holdsLmHead: boolean;
}, tpSize: number): ModelShard {
  if (!rank.heads || !rank.kvHeads || !rank.ffn || !rank.vocab) throw new Error('shardOfRank: the plan was built without the model, so it has no shards');
  return {
    tpSize, tpRank: rank.tpRank, layers: rank.layers, heads: rank.heads, kvHeads: rank.kvHeads, ffn: rank.ffn, vocab: rank.vocab,
    embeds: rank.holdsEmbedding, lmHead: rank.holdsLmHead,
  };
}

/**
 * All-reduce capacity of a stage's tensor group: 8 rows of gathered logits, or
 * 256 rows of row-parallel partials, whichever is more (longer steps run in
 * chunks of rows; memory: 2 x tp x this).
 */
export function tensorGroupCapacity(c: LlamaConfig): number {
  const bytes = Math.max(8 * c.vocabSize * 4, ROW_SEGMENTS * c.hiddenSize * 4 * 256);
  return Math.ceil(bytes / 4096) * 4096;
}
