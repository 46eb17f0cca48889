// Default sampling parameters of a served model. Like vLLM's
// `--generation-config auto` (its default), the model's
// generation_config.json supplies temperature / top_p / top_k / min_p /
// repetition_penalty for requests that leave them unset; `vllm` ignores the
// file and keeps the engine's defaults (temperature 1, no truncation).

export interface SamplingDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
}

const FIELDS: [key: string, name: keyof SamplingDefaults][] = [
  ['temperature', 'temperature'],
  ['top_p', 'topP'],
  ['top_k', 'topK'],
  ['min_p', 'minP'],
  ['repetition_penalty', 'repetitionPenalty'],
];

/** The sampling defaults in a generation_config.json's fields (numbers only; others are ignored). */
export function samplingDefaults(generationConfig: Record<string, unknown>, mode: 'auto' | 'vllm'): SamplingDefaults {
  if (mode === 'vllm') return {};
  const out: SamplingDefaults = {};
  for (const [key, name] of FIELDS) {
    const value = generationConfig[key];
    if (typeof value === 'number' && Number.isFinite(value)) out[name] = value;
  }
  return out;
}

export function describeDefaults(defaults: SamplingDefaults): string {
  const names = new Map(FIELDS.map(([key, name]) => [name, key]));
  const entries = Object.entries(defaults);
  return entries.length ? `${entries.map(([k, v]) => `${names.get(k as keyof SamplingDefaults)}=${v}`).join(', ')} (generation_config.json)` : 'the engine\'s';
}
