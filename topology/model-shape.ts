// The model facts a topology is checked against, read from an HF directory:
// the shape, and the bytes per element the ranks will hold (FP8 linears from
// the checkpoint or --quantization fp8, an FP8 KV cache from --kv-cache-dtype).
import { Checkpoint } from '../models/checkpoint.js';
import { resolveDtype, resolveKvCacheDtype } from '../models/options.js';
import { resolveFp8Source } from '../models/quantization/fp8-weights.js';
import type { ModelShape } from './plan.js';

export interface ModelShapeOptions {
  /** --quantization (fp8: every decoder linear quantized at load). */
  quantization?: string;
  /** --kv-cache-dtype (fp8 kinds: one byte per element). */
  kvCacheDtype?: string;
}

const ATTENTION = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj'];
const MLP = ['mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];

export function modelShape(dir: string, dtype?: string, options: ModelShapeOptions = {}): ModelShape {
  const ckpt = Checkpoint.open(dir);
  const config = ckpt.config;
  const bytes = resolveDtype(dtype, config) === 'bfloat16' ? 2 : 4;
  const fp8 = resolveFp8Source(ckpt, options.quantization);
  // A group of linears counts 1 byte per weight only when every layer stores it
  // as FP8 (a checkpoint that keeps some layers in bf16, like Meta's, is
  // counted at the bf16 size: the plan's memory check stays on the safe side).
  const storedFp8 = (modules: string[]) => Array.from({ length: config.numLayers }, (_, l) => l)
    .every((l) => modules.every((m) => ckpt.entry(`model.layers.${l}.${m}.weight`).dtype === 'F8_E4M3'));
  const linearBytes = (modules: string[]) => (fp8.kind === 'online' || (fp8.kind === 'checkpoint' && storedFp8(modules)) ? 1 : bytes);
  const lmHeadFp8 = fp8.kind === 'checkpoint' && ckpt.has('lm_head.weight') && ckpt.entry('lm_head.weight').dtype === 'F8_E4M3';
  const kvFp8 = resolveKvCacheDtype(options.kvCacheDtype) !== 'auto';
  return {
    numLayers: config.numLayers,
    numHeads: config.numHeads,
    numKvHeads: config.numKvHeads,
    headDim: config.headDim,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    vocabSize: config.vocabSize,
    tieWordEmbeddings: config.tieWordEmbeddings && !lmHeadFp8,
    weightBytes: bytes,
    attentionBytes: linearBytes(ATTENTION),
    mlpBytes: linearBytes(MLP),
    lmHeadBytes: lmHeadFp8 ? 1 : bytes,
    kvBytes: kvFp8 ? 1 : bytes,
  };
}
