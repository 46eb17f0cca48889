// bf16 helpers for tests: the same rounding as native/src/kernels/bf16.cc.
// bf16 is the top 16 bits of an IEEE fp32 (sign, 8-bit exponent, 7-bit mantissa).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** fp32 -> bf16 bits, round to nearest even; NaN stays NaN (quiet bit set). */
export function fp32ToBf16Bits(value: number): number {
  f32[0] = value;
  const u = u32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x0040) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff; // non-NaN u <= 0xff800000: no overflow
}

/** bf16 bits -> the fp32 (as a JS number) they encode. */
export function bf16BitsToFp32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** Element-wise fp32ToBf16Bits. */
export function toBf16Array(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = fp32ToBf16Bits(values[i]!);
  return out;
}
