// The FP8 KV cache's per-layer scales (native/src/model/kv_layout.h: code = fp8(value / scale)).
// Checkpoints calibrated for an FP8 KV cache carry them per layer as
//   model.layers.<l>.self_attn.k_scale, .v_scale      (compressed-tensors, vLLM)
//   model.layers.<l>.self_attn.kv_scale               (older: one scale for both)
// scalar tensors ([] or [1]). Without them e4m3 uses 1.0 and says so (as vLLM
// does); e5m2 is unscaled (its range reaches 57344).
import type { Checkpoint } from '../checkpoint.js';
import { ModelLoadError } from '../errors.js';
import type { KvCacheDtype } from '../options.js';
import { readTensorInto } from '../safetensors.js';

export interface KvScales {
  k: Float32Array; // [layers]
  v: Float32Array; // [layers]
  /** Set when the checkpoint had no scales and 1.0 is used. */
  warning?: string;
}

function scalar(ckpt: Checkpoint, name: string): number {
  const entry = ckpt.entry(name);
  if (!(entry.shape.length === 0 || (entry.shape.length === 1 && entry.shape[0] === 1)))
    throw new ModelLoadError(entry.file, `KV cache scale has shape [${entry.shape.join(', ')}], expected [] or [1]`, { tensor: name });
  const v = new Float32Array(1);
  readTensorInto({ ...entry, shape: [1] }, v);
  if (!(Number.isFinite(v[0]!) && v[0]! > 0)) throw new ModelLoadError(entry.file, `KV cache scale ${v[0]} is not a finite positive number`, { tensor: name });
  return v[0]!;
}

export function readKvScales(ckpt: Checkpoint, kv: Exclude<KvCacheDtype, 'auto'>): KvScales {
  const L = ckpt.config.numLayers;
  const k = new Float32Array(L).fill(1);
  const v = new Float32Array(L).fill(1);
  if (kv === 'fp8_e5m2') return { k, v };
  let found = 0;
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.self_attn.`;
    if (ckpt.has(`${p}k_scale`) || ckpt.has(`${p}v_scale`)) {
      k[l] = scalar(ckpt, `${p}k_scale`);
      v[l] = scalar(ckpt, `${p}v_scale`);
      found++;
    } else if (ckpt.has(`${p}kv_scale`)) {
      k[l] = v[l] = scalar(ckpt, `${p}kv_scale`);
      found++;
    }
  }
  if (found > 0 && found < L) throw new ModelLoadError(ckpt.dir, `the checkpoint has KV cache scales (self_attn.k_scale / v_scale) for ${found} of ${L} layers; every layer needs them`);
  if (found === 0) return { k, v, warning: `--kv-cache-dtype ${kv}: ${ckpt.dir} has no k_scale / v_scale tensors; using scale 1.0 for every layer (values beyond +-448 saturate; accuracy may suffer)` };
  return { k, v };
}
