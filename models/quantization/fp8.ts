// The two FP8 formats, bit by bit.
//
//   e4m3fn  s eeee mmm  bias 7, no infinities; 0x7f / 0xff are NaN; max 448;
//           subnormals m * 2^-9 (smallest 2^-9)
//   e5m2    s eeeee mm  bias 15, IEEE-like (inf 0x7c, NaN 0x7d..); max 57344;
//           subnormals m * 2^-16
//
// Encoding rounds to nearest, ties to even, and saturates to the largest
// finite value (what torch's float8 casts of clamped values and FBGEMM's
// quantizers produce for in-range inputs). Every e4m3 value is exactly a bf16
// value, which the FP8 kernels rely on.
const E4M3_MAX = 448;
const E5M2_MAX = 57344;

function decodeTable(exponentBits: number, bias: number, ieeeSpecials: boolean): Float32Array {
  const mantissaBits = 7 - exponentBits;
  const table = new Float32Array(256);
  for (let bits = 0; bits < 256; bits++) {
    const sign = bits & 0x80 ? -1 : 1;
    const e = (bits >> mantissaBits) & ((1 << exponentBits) - 1);
    const m = bits & ((1 << mantissaBits) - 1);
    let value: number;
    if (e === 0) value = m * 2 ** (1 - bias - mantissaBits);
    else value = (1 + m / (1 << mantissaBits)) * 2 ** (e - bias);
    if (ieeeSpecials && e === (1 << exponentBits) - 1) value = m === 0 ? Infinity : NaN;
    if (!ieeeSpecials && (bits & 0x7f) === 0x7f) value = NaN;
    table[bits] = sign * value;
  }
  return table;
}

export const E4M3_VALUES = decodeTable(4, 7, false);
export const E5M2_VALUES = decodeTable(5, 15, true);

/** Positive finite values in increasing order with their codes, for encoding by search. */
function positiveCodes(table: Float32Array): { values: Float64Array; codes: Uint8Array } {
  const pairs: [number, number][] = [];
  for (let bits = 0; bits < 128; bits++) if (Number.isFinite(table[bits]!)) pairs.push([table[bits]!, bits]);
  pairs.sort((a, b) => a[0] - b[0]);
  return { values: Float64Array.from(pairs, (p) => p[0]), codes: Uint8Array.from(pairs, (p) => p[1]) };
}

const E4M3_POS = positiveCodes(E4M3_VALUES);
const E5M2_POS = positiveCodes(E5M2_VALUES);

function encode(value: number, pos: { values: Float64Array; codes: Uint8Array }, max: number, nan: number): number {
  if (Number.isNaN(value)) return nan;
  const sign = value < 0 || Object.is(value, -0) ? 0x80 : 0;
  const a = Math.min(Math.abs(value), max); // saturate
  const { values, codes } = pos;
  let lo = 0;
  let hi = values.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (values[mid]! <= a) lo = mid;
    else hi = mid;
  }
  let pick = lo;
  if (a >= values[hi]!) pick = hi;
  else if (a > values[lo]!) {
    const dLo = a - values[lo]!;
    const dHi = values[hi]! - a;
    pick = dLo < dHi ? lo : dHi < dLo ? hi : (codes[lo]! & 1) === 0 ? lo : hi; // ties to even code
  }
  return sign | codes[pick]!;
}

export function encodeE4M3(value: number): number {
  return encode(value, E4M3_POS, E4M3_MAX, 0x7f);
}

export function encodeE5M2(value: number): number {
  return encode(value, E5M2_POS, E5M2_MAX, 0x7f);
}

/**
 * Per-output-channel quantization of a [rows, cols] weight (FBGEMM's scheme):
 * scale[r] = max|w[r, :]| / 448 (1 for an all-zero row), q = e4m3(w / scale).
 */
export function quantizeRowsE4M3(weights: Float32Array, rows: number, cols: number): { codes: Uint8Array; scales: Float32Array } {
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(weights[r * cols + c]!));
    const scale = Math.fround(amax > 0 ? amax / E4M3_MAX : 1);
    scales[r] = scale;
    for (let c = 0; c < cols; c++) codes[r * cols + c] = encodeE4M3(Math.fround(weights[r * cols + c]! / scale));
  }
  return { codes, scales };
}
