// Loading a checkpoint's weights into aligned anonymous native memory
// (allocAligned: mmap'd anonymous pages, not a file mapping), prepacked into
// the layout the kernels read:
//
//   qkv      [(Hq + 2 Hkv) D, H]   q_proj rows, then k_proj rows, then v_proj rows
//   o        [H, Hq D]
//   gate_up  [2 I, H]              gate_proj rows, then up_proj rows
//   down     [H, I]
//   embed    [V, H]; lm_head [V, H] (the embedding itself when tied)
//   norms    [H] fp32
// Matrices are bf16 bits (Uint16Array) in bfloat16 mode, fp32 in float32
// mode; fp16 and fp32 checkpoints are converted while reading.
//
// FP8 linears (a checkpoint's FP8 format, or --quantization fp8) come from
// quantization/fp8-weights.ts: e4m3 codes resident as stored plus scales.
//
// With weightMemory 'mmap', a tensor the kernels can use as stored (not
// fused, already in the mode's dtype: embed / lm_head / o / down of a bf16
// checkpoint in bfloat16 mode) is a view into a read-only file mapping
// instead of a copy.
import type { NativeAddon } from '../native/index.js';
import type { NativeLinear, NativeModelDesc } from '../native/model-raw.js';
import type { Checkpoint } from './checkpoint.js';
import type { ModelDtype, WeightMemory } from './options.js';
import { loadFp8Linear, type Fp8Source, type LinearPart } from './quantization/fp8-weights.js';
import { readTensorInto, type TensorEntry } from './safetensors.js';

export type WeightArray = Uint16Array | Float32Array;

export interface LoadedWeights {
  embed: WeightArray;
  lmHead: NativeLinear;
  finalNorm: Float32Array;
  layerWeights: NativeModelDesc['layerWeights'];
  /** Bytes of anonymous native memory holding weights. */
  residentBytes: number;
  /** Bytes of weights used in place from file mappings (weightMemory 'mmap'). */
  mappedBytes: number;
}

class NativeArena {
  residentBytes = 0;
  mappedBytes = 0;
  private readonly maps = new Map<string, ArrayBuffer>();
  constructor(
    private readonly native: NativeAddon,
    private readonly weightMemory: WeightMemory,
  ) {}
  /** A view of `entry` in its file's mapping, when it can be used as stored; else undefined. */
  mapped(dtype: ModelDtype, entry: TensorEntry): WeightArray | undefined {
    const want = dtype === 'bfloat16' ? 'BF16' : 'F32';
    const size = dtype === 'bfloat16' ? 2 : 4;
    if (this.weightMemory !== 'mmap' || entry.dtype !== want || entry.begin % size !== 0) return undefined;
    let map = this.maps.get(entry.file);
    if (!map) this.maps.set(entry.file, (map = this.native.model.mapFile(entry.file)));
    this.mappedBytes += entry.end - entry.begin;
    const count = (entry.end - entry.begin) / size;
    return dtype === 'bfloat16' ? new Uint16Array(map, entry.begin, count) : new Float32Array(map, entry.begin, count);
  }
  matrix(dtype: ModelDtype, elements: number): WeightArray {
    const bytes = elements * (dtype === 'bfloat16' ? 2 : 4);
    this.residentBytes += bytes;
    const buf = this.native.model.allocAligned(bytes);
    return dtype === 'bfloat16' ? new Uint16Array(buf) : new Float32Array(buf);
  }
  bytes(n: number): ArrayBuffer {
    this.residentBytes += n;
    return this.native.model.allocAligned(n);
  }
  vector(elements: number): Float32Array {
    this.residentBytes += elements * 4;
    return new Float32Array(this.native.model.allocAligned(elements * 4));
  }
}

/** Reads `parts` one after another into one array (row fusion). */
function fused(arena: NativeArena, dtype: ModelDtype, parts: TensorEntry[]): WeightArray {
  const inPlace = parts.length === 1 ? arena.mapped(dtype, parts[0]!) : undefined;
  if (inPlace) return inPlace;
  const total = parts.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  const out = arena.matrix(dtype, total);
  let offset = 0;
  for (const p of parts) offset += readTensorInto(p, out, offset);
  return out;
}

export function loadWeights(ckpt: Checkpoint, dtype: ModelDtype, native: NativeAddon, weightMemory: WeightMemory = 'anonymous', fp8: Fp8Source = { kind: 'none' }): LoadedWeights {
  const c = ckpt.config;
  const H = c.hiddenSize, D = c.headDim, I = c.intermediateSize, V = c.vocabSize;
  const arena = new NativeArena(native, weightMemory);
  /** A linear of these modules' rows: FP8 when its source says so, else in the mode's dtype. */
  const linear = (parts: LinearPart[]): NativeLinear =>
    loadFp8Linear(ckpt, fp8, parts, arena, native) ?? fused(arena, dtype, parts.map((p) => ckpt.tensor(`${p.module}.weight`, p.shape)));
  const norm = (name: string): Float32Array => {
    const v = arena.vector(H);
    readTensorInto(ckpt.tensor(name, [H]), v);
    return v;
  };
  const embed = fused(arena, dtype, [ckpt.tensor('model.embed_tokens.weight', [V, H])]);
  // The lm head is FP8 only when the checkpoint stores it so (online quantization keeps it bf16).
  const lmHead = c.tieWordEmbeddings ? embed : fp8.kind === 'online' ? fused(arena, dtype, [ckpt.tensor('lm_head.weight', [V, H])]) : linear([{ module: 'lm_head', shape: [V, H] }]);
  const layerWeights: NativeModelDesc['layerWeights'] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    layerWeights.push({
      inputNorm: norm(`${p}input_layernorm.weight`),
      qkv: linear([
        { module: `${p}self_attn.q_proj`, shape: [c.numHeads * D, H] },
        { module: `${p}self_attn.k_proj`, shape: [c.numKvHeads * D, H] },
        { module: `${p}self_attn.v_proj`, shape: [c.numKvHeads * D, H] },
      ]),
      o: linear([{ module: `${p}self_attn.o_proj`, shape: [H, c.numHeads * D] }]),
      postNorm: norm(`${p}post_attention_layernorm.weight`),
      gateUp: linear([
        { module: `${p}mlp.gate_proj`, shape: [I, H] },
        { module: `${p}mlp.up_proj`, shape: [I, H] },
      ]),
      down: linear([{ module: `${p}mlp.down_proj`, shape: [H, I] }]),
    });
  }
  const finalNorm = norm('model.norm.weight');
  return { embed, lmHead, finalNorm, layerWeights, residentBytes: arena.residentBytes, mappedBytes: arena.mappedBytes };
}
