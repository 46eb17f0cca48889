// Partial sums whose addition order matters in float32 (large and small magnitudes).
export function segmentParts(segment: number, m: number): Float32Array {
  return Float32Array.from({ length: m }, (_, i) => Math.fround((segment % 3 === 0 ? 1e7 : 1) * Math.sin(i * 0.7 + segment * 1.3) + (i % 5) * 1e-3));
}

/** The fold a single rank makes: ((P0 + P1) + P2) + ... in float32. */
export function foldInOrder(segments: number, m: number): Float32Array {
  const out = Float32Array.from(segmentParts(0, m));
  for (let s = 1; s < segments; s++) {
    const part = segmentParts(s, m);
    for (let i = 0; i < m; i++) out[i] = Math.fround(out[i]! + part[i]!);
  }
  return out;
}
