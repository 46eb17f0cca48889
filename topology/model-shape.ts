// The model facts a topology is checked against, read from an HF directory.
import { join } from 'node:path';
import { readLlamaConfig } from '../models/config.js';
import { resolveDtype } from '../models/options.js';
import type { ModelShape } from './plan.js';

export function modelShape(dir: string, dtype?: string): ModelShape {
  const config = readLlamaConfig(join(dir, 'config.json'));
  const resolved = resolveDtype(dtype, config);
  const bytes = resolved === 'bfloat16' ? 2 : 4;
  return {
    numLayers: config.numLayers,
    numHeads: config.numHeads,
    numKvHeads: config.numKvHeads,
    headDim: config.headDim,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    vocabSize: config.vocabSize,
    tieWordEmbeddings: config.tieWordEmbeddings,
    weightBytes: bytes,
    kvBytes: bytes,
  };
}
