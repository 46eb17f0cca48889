// RoPE inverse frequencies, with Llama 3.1's 'llama3' frequency scaling:
// wavelengths longer than original_max / low_freq_factor are divided by
// `factor`, those shorter than original_max / high_freq_factor are kept, and
// the band between is interpolated smoothly. This is what makes the 131072
// context of Llama 3.1 correct.
import type { Llama3RopeScaling } from './config.js';

/** inv_freq[i] for i < headDim / 2, in float64. */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: Llama3RopeScaling | null): Float64Array {
  const half = headDim / 2;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    const base = 1 / theta ** ((2 * i) / headDim);
    out[i] = scaling === null ? base : llama3Scale(base, scaling);
  }
  return out;
}

function llama3Scale(invFreq: number, s: Llama3RopeScaling): number {
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  const wavelen = (2 * Math.PI) / invFreq;
  if (wavelen < highFreqWavelen) return invFreq;
  if (wavelen > lowFreqWavelen) return invFreq / s.factor;
  const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
  return (1 - smooth) * (invFreq / s.factor) + smooth * invFreq;
}
