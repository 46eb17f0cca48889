// Element conversions between checkpoint dtypes and the forward pass's
// (bf16 bits in a Uint16Array, or fp32). fp16 has no arithmetic on this CPU:
// it is converted at load.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** fp32 -> bf16 bits, round to nearest even; NaN stays NaN (as native/src/kernels/bf16.cc). */
export function fp32ToBf16(value: number): number {
  f32[0] = value;
  const u = u32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x0040) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16ToFp32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

let fp16Table: Float32Array | undefined;
/** All 65536 fp16 values as fp32 (exact). */
function fp16Values(): Float32Array {
  if (fp16Table) return fp16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac === 0 ? sign * Infinity : NaN;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  fp16Table = t;
  return t;
}

export type SourceDtype = 'BF16' | 'F16' | 'F32';
export const SOURCE_DTYPE_BYTES: Record<SourceDtype, number> = { BF16: 2, F16: 2, F32: 4 };

/** Converts `count` little-endian source elements at `src` into `dst` (bf16 bits or fp32) at dstOffset. */
export function convertInto(src: Uint8Array, dtype: SourceDtype, count: number, dst: Uint16Array | Float32Array, dstOffset: number): void {
  const toBf16 = dst instanceof Uint16Array;
  if (dtype === 'F32') {
    const s = new Float32Array(src.buffer, src.byteOffset, count);
    if (!toBf16) {
      dst.set(s, dstOffset);
      return;
    }
    const bits = new Uint32Array(src.buffer, src.byteOffset, count);
    for (let i = 0; i < count; i++) {
      const u = bits[i]!;
      dst[dstOffset + i] = (u & 0x7fffffff) > 0x7f800000 ? ((u >>> 16) | 0x0040) & 0xffff : ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
    }
    return;
  }
  const s = new Uint16Array(src.buffer, src.byteOffset, count);
  if (dtype === 'BF16') {
    if (toBf16) {
      dst.set(s, dstOffset);
      return;
    }
    const out = new Uint32Array(dst.buffer, dst.byteOffset + dstOffset * 4, count);
    for (let i = 0; i < count; i++) out[i] = s[i]! << 16;
    return;
  }
  const table = fp16Values(); // F16
  if (!toBf16) {
    for (let i = 0; i < count; i++) dst[dstOffset + i] = table[s[i]!]!;
    return;
  }
  const tmp = new Float32Array(count);
  for (let i = 0; i < count; i++) tmp[i] = table[s[i]!]!;
  convertInto(new Uint8Array(tmp.buffer), 'F32', count, dst, dstOffset);
}
