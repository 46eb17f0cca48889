// The token ids a packed grammar mask allows (bit id % 32 of word id / 32), ascending.
export function allowedIds(mask: Uint32Array): number[] {
  const out: number[] = [];
  for (let w = 0; w < mask.length; w++) for (let x = mask[w]!; x !== 0; x &= x - 1) out.push(w * 32 + 31 - Math.clz32(x & -x));
  return out;
}
