// FP8 checkpoint formats, read from config.json's quantization_config and
// normalized into one description the loader and kernels use.
//
//   fbgemm_fp8 (Meta's official FP8 Llama 3.1 checkpoints)
//     weight float8_e4m3fn [out, in], weight_scale f32 [out, 1] (per channel)
//     activations: dynamic, per token, scale = max(min(absmax, ub) / 448, 1 / (448 * 512))
//     modules_to_not_convert: kept in bf16 (first and last layers, attention, lm_head)
//   compressed-tensors, format "float-quantized"
//     config_groups.*.weights {num_bits 8, type float, strategy channel | tensor}
//     config_groups.*.input_activations {dynamic true|false, strategy token | tensor}
//     ignore: modules kept in bf16
//   fp8
//     per-tensor weight_scale, activation_scheme dynamic | static (input_scale)
//
// Dynamic activation scales are always per token here, never per tensor, so
// results stay batch invariant (DESIGN.md).
import { ModelLoadError } from '../errors.js';

type WeightScaleGranularity = 'channel' | 'tensor';

export interface Fp8Scheme {
  method: 'fbgemm_fp8' | 'compressed-tensors' | 'fp8';
  weightScale: WeightScaleGranularity;
  /** dynamic: per-token scales computed at run time (clamped by `upperBound` when given); static: the checkpoint's input_scale. */
  activations: { kind: 'dynamic'; upperBound: number | null } | { kind: 'static' };
  /** Module name patterns (exact names, suffixes, or "re:" regexes) left unquantized. */
  keepUnquantized: string[];
}

type Json = Record<string, unknown>;

/** null when the checkpoint has no quantization_config. */
export function parseQuantizationConfig(config: Json, file = 'config.json'): Fp8Scheme | null {
  const raw = config['quantization_config'];
  if (raw === undefined || raw === null) return null;
  const fail = (why: string): never => {
    throw new ModelLoadError(file, `quantization_config: ${why}`);
  };
  if (typeof raw !== 'object' || Array.isArray(raw)) fail('must be an object');
  const q = raw as Json;
  const method = q['quant_method'];
  const strings = (value: unknown, field: string): string[] => {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) fail(`${field} must be a list of module names`);
    return value as string[];
  };
  switch (method) {
    case 'fbgemm_fp8': {
      const ub = q['activation_scale_ub'];
      if (ub !== undefined && !(typeof ub === 'number' && ub > 0)) fail(`activation_scale_ub must be a positive number, got ${JSON.stringify(ub)}`);
      return { method, weightScale: 'channel', activations: { kind: 'dynamic', upperBound: (ub as number | undefined) ?? null }, keepUnquantized: strings(q['modules_to_not_convert'], 'modules_to_not_convert') };
    }
    case 'fp8': {
      const scheme = q['activation_scheme'] ?? 'dynamic';
      if (scheme !== 'dynamic' && scheme !== 'static') fail(`activation_scheme must be "dynamic" or "static", got ${JSON.stringify(scheme)}`);
      return { method, weightScale: 'tensor', activations: scheme === 'static' ? { kind: 'static' } : { kind: 'dynamic', upperBound: null }, keepUnquantized: strings(q['ignored_layers'] ?? q['modules_to_not_convert'], 'ignored_layers') };
    }
    case 'compressed-tensors': {
      if (q['format'] !== 'float-quantized') fail(`only format "float-quantized" (FP8) is supported, got ${JSON.stringify(q['format'])}`);
      const groups = q['config_groups'];
      if (!groups || typeof groups !== 'object' || Object.keys(groups).length !== 1) fail('config_groups must hold exactly one group');
      const group = Object.values(groups as Json)[0] as Json;
      const weights = group['weights'] as Json | undefined;
      if (!weights || weights['num_bits'] !== 8 || weights['type'] !== 'float') fail('weights must be {num_bits: 8, type: "float"} (FP8)');
      const strategy = weights!['strategy'];
      if (strategy !== 'channel' && strategy !== 'tensor') fail(`weights.strategy must be "channel" or "tensor", got ${JSON.stringify(strategy)}`);
      const input = group['input_activations'] as Json | undefined | null;
      let activations: Fp8Scheme['activations'] = { kind: 'dynamic', upperBound: null };
      if (input) {
        if (input['num_bits'] !== 8 || input['type'] !== 'float') fail('input_activations must be FP8 ({num_bits: 8, type: "float"})');
        if (input['dynamic'] === false) activations = { kind: 'static' };
        else if (input['strategy'] !== undefined && input['strategy'] !== 'token' && input['strategy'] !== 'tensor') fail(`input_activations.strategy must be "token" or "tensor", got ${JSON.stringify(input['strategy'])}`);
      }
      return { method, weightScale: strategy as WeightScaleGranularity, activations, keepUnquantized: strings(q['ignore'], 'ignore') };
    }
    default:
      return fail(`quant_method ${JSON.stringify(method)} is not supported (supported: fbgemm_fp8, compressed-tensors, fp8)`);
  }
}

/** Whether a linear module (e.g. "model.layers.3.mlp.down_proj") stays unquantized under the scheme. */
export function isKeptUnquantized(scheme: Fp8Scheme, module: string): boolean {
  return scheme.keepUnquantized.some((pattern) => {
    if (pattern.startsWith('re:')) return new RegExp(pattern.slice(3)).test(module);
    return module === pattern || module.endsWith(`.${pattern}`) || module.startsWith(`${pattern}.`);
  });
}

const FP8_MIN_SCALE = 1 / (448 * 512);

/** FBGEMM's dynamic per-token activation scale. */
export function activationScale(absmax: number, upperBound: number | null): number {
  const clamped = upperBound === null ? absmax : Math.min(absmax, upperBound);
  return Math.max(clamped / 448, FP8_MIN_SCALE);
}
