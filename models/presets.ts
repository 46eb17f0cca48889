// Shapes of the models the generator (generator.ts) writes. Real Llama
// shapes for benchmarks, tiny ones for tests; every preset is Llama 3.1
// architecture with the real vocabulary (128256) so the real tokenizer fits.
//
//   preset         hidden layers heads kv  head_dim intermediate tied  rope llama3 factor  file (bf16)
//   tiny               32     2     4   2       8          96    yes   8                   ~8.3 MB
//   tiny-long          64     1     1   1      16         128    yes   8                   ~16 MB
//   llama-3.2-1b     2048    16    32   8      64        8192    yes   32                  2.47 GB
//   llama-3.1-8b     4096    32    32   8     128       14336    no    8                   16.1 GB
//
// `tiny` is the test model: a few MB, almost all of it the embedding, with
// GQA (2 query heads per kv head), two layers and llama3 RoPE. `tiny-long`
// has a single kv head of dim 16 so a 131072-token prompt fits in 8 MiB of
// bf16 KV cache and its attention (quadratic in the context) stays cheap on
// every ISA.

export interface ModelPreset {
  name: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  ropeTheta: number;
  ropeFactor: number;
  rmsNormEps: number;
}

const LLAMA3_VOCAB = 128256;

const base = { vocabSize: LLAMA3_VOCAB, maxPositionEmbeddings: 131072, ropeTheta: 500000, rmsNormEps: 1e-5 };

const PRESETS: Record<string, ModelPreset> = {
  tiny: { ...base, name: 'tiny', hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 96, tieWordEmbeddings: true, ropeFactor: 8 },
  'tiny-long': { ...base, name: 'tiny-long', hiddenSize: 64, numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: 16, intermediateSize: 128, tieWordEmbeddings: true, ropeFactor: 8 },
  'llama-3.2-1b': { ...base, name: 'llama-3.2-1b', hiddenSize: 2048, numLayers: 16, numHeads: 32, numKvHeads: 8, headDim: 64, intermediateSize: 8192, tieWordEmbeddings: true, ropeFactor: 32 },
  'llama-3.1-8b': { ...base, name: 'llama-3.1-8b', hiddenSize: 4096, numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128, intermediateSize: 14336, tieWordEmbeddings: false, ropeFactor: 8 },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

export function getPreset(name: string): ModelPreset {
  const p = PRESETS[name];
  if (!p) throw new RangeError(`unknown preset '${name}' (expected one of ${presetNames().join(', ')})`);
  return p;
}
