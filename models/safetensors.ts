// The safetensors format: an 8-byte little-endian header length N, N bytes of
// JSON ({ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__ }),
// then the tensor data; offsets are relative to the end of the header.
//
//   [ u64 N ][ JSON header, N bytes, space padded ][ data ... ]
//             offsets in the header count from here ^
//
// The reader validates the whole header up front (truncation, corrupt JSON,
// offsets outside the file, sizes that disagree with shape x dtype) so a bad
// file fails at open with the file and the tensor named, not as garbage
// weights later. Tensors are read with positioned reads (fs.readSync) straight
// into the destination (anonymous native memory), optionally just a slice of
// rows or columns (a tensor-parallel rank's share).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { convertInto, SOURCE_DTYPE_BYTES, type SourceDtype } from './dtype.js';
import { ModelLoadError } from './errors.js';

const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
};
/** Largest header we accept: real ones are well under 1 MiB. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
/** readSync moves at most this much per call. */
const READ_CHUNK = 64 * 1024 * 1024;

export interface TensorEntry {
  name: string;
  file: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range of the data in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  fileBytes: number;
  dataStart: number;
  metadata: Record<string, string>;
  tensors: Map<string, TensorEntry>;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function readExactly(fd: number, buf: Uint8Array, position: number, file: string, what: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, Math.min(READ_CHUNK, buf.length - done), position + done);
    if (n === 0) throw new ModelLoadError(file, `truncated: ${what} ends at byte ${position + buf.length}, file ends at ${position + done}`);
    done += n;
  }
}

/** Opens a file and validates its header. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelLoadError(file, code === 'ENOENT' ? 'file is missing' : `cannot open: ${(err as Error).message}`, { cause: err });
  }
  try {
    const fileBytes = fstatSync(fd).size;
    if (fileBytes < 8) throw new ModelLoadError(file, `truncated or corrupt safetensors header: file has ${fileBytes} bytes, the header length alone takes 8`);
    const lenBuf = new Uint8Array(8);
    readExactly(fd, lenBuf, 0, file, 'header length');
    const headerLen = Number(new DataView(lenBuf.buffer).getBigUint64(0, true));
    if (headerLen > MAX_HEADER_BYTES) throw new ModelLoadError(file, `corrupt safetensors header: it claims ${headerLen} bytes (limit ${MAX_HEADER_BYTES})`);
    if (8 + headerLen > fileBytes) throw new ModelLoadError(file, `truncated safetensors header: it claims ${headerLen} bytes, the file has ${fileBytes - 8} after the length`);
    const headerBuf = new Uint8Array(headerLen);
    readExactly(fd, headerBuf, 8, file, 'header');
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBuf));
    } catch (err) {
      throw new ModelLoadError(file, `corrupt safetensors header: not valid JSON (${(err as Error).message})`, { cause: err });
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ModelLoadError(file, 'corrupt safetensors header: not a JSON object');
    const dataStart = 8 + headerLen;
    const dataBytes = fileBytes - dataStart;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = (value ?? {}) as Record<string, string>;
        continue;
      }
      const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
      const dtype = v?.dtype;
      const shape = v?.shape;
      const offsets = v?.data_offsets;
      if (typeof dtype !== 'string' || DTYPE_BYTES[dtype] === undefined)
        throw new ModelLoadError(file, `corrupt safetensors header: unknown dtype ${JSON.stringify(dtype)}`, { tensor: name });
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
        throw new ModelLoadError(file, `corrupt safetensors header: shape ${JSON.stringify(shape)} is not a list of sizes`, { tensor: name });
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[1] < offsets[0])
        throw new ModelLoadError(file, `corrupt safetensors header: data_offsets ${JSON.stringify(offsets)} is not [begin, end]`, { tensor: name });
      const want = elementCount(shape as number[]) * DTYPE_BYTES[dtype]!;
      if (offsets[1] - offsets[0] !== want)
        throw new ModelLoadError(file, `corrupt safetensors header: ${offsets[1] - offsets[0]} data bytes for shape [${shape.join(', ')}] of ${dtype}, which needs ${want}`, { tensor: name });
      if (offsets[1] > dataBytes)
        throw new ModelLoadError(file, `truncated: the tensor's data ends at byte ${offsets[1]} of the data section, which has ${dataBytes} bytes`, { tensor: name });
      tensors.set(name, { name, file, dtype, shape: shape as number[], begin: dataStart + offsets[0], end: dataStart + offsets[1] });
    }
    return { file, fileBytes, dataStart, metadata, tensors };
  } finally {
    closeSync(fd);
  }
}

/** Which part of a 2-D (or 1-D) tensor to read: rows of dim 0 and / or columns of dim 1. */
export interface TensorSlice {
  rows?: [number, number];
  cols?: [number, number];
}

/**
 * Reads `entry` (or a slice of it) into dst at element dstOffset, converting
 * BF16 / F16 / F32 to dst's type (Uint16Array: bf16 bits, Float32Array: fp32).
 * Returns the number of elements written.
 */
export function readTensorInto(entry: TensorEntry, dst: Uint16Array | Float32Array, dstOffset = 0, slice: TensorSlice = {}): number {
  const dtype = entry.dtype;
  if (dtype !== 'BF16' && dtype !== 'F16' && dtype !== 'F32')
    throw new ModelLoadError(entry.file, `unsupported dtype ${dtype} (Troupe loads BF16, F16 and F32)`, { tensor: entry.name });
  const src = dtype as SourceDtype;
  const esize = SOURCE_DTYPE_BYTES[src];
  const { r0, r1, c0, c1, cols, width, count } = sliceOf(entry, slice);
  if (dstOffset + count > dst.length)
    throw new ModelLoadError(entry.file, `destination holds ${dst.length - dstOffset} elements, the tensor needs ${count}`, { tensor: entry.name });
  const fd = openSync(entry.file, 'r');
  try {
    const direct = src === 'BF16' && dst instanceof Uint16Array;
    if (direct && width === cols) {
      // Contiguous rows straight into the destination: no staging copy.
      const bytes = new Uint8Array(dst.buffer, dst.byteOffset + dstOffset * 2, count * 2);
      readExactly(fd, bytes, entry.begin + r0 * cols * esize, entry.file, `tensor ${entry.name}`);
      return count;
    }
    // Staged: whole rows in chunks, then convert the wanted columns.
    const rowsPerChunk = Math.max(1, Math.floor(READ_CHUNK / (cols * esize)));
    const stage = new Uint8Array(Math.min(r1 - r0, rowsPerChunk) * cols * esize);
    for (let r = r0; r < r1; r += rowsPerChunk) {
      const nr = Math.min(rowsPerChunk, r1 - r);
      const buf = stage.subarray(0, nr * cols * esize);
      readExactly(fd, buf, entry.begin + r * cols * esize, entry.file, `tensor ${entry.name}`);
      for (let i = 0; i < nr; i++) {
        const rowBytes = buf.subarray((i * cols + c0) * esize, (i * cols + c1) * esize);
        const aligned = rowBytes.byteOffset % 4 === 0 ? rowBytes : rowBytes.slice();
        convertInto(aligned, src, width, dst, dstOffset + (r - r0 + i) * width);
      }
    }
    return count;
  } finally {
    closeSync(fd);
  }
}

/** A tensor viewed as [rows, cols] (cols: the product of the trailing dims), and the slice of it wanted (checked). */
function sliceOf(entry: TensorEntry, slice: TensorSlice): { r0: number; r1: number; c0: number; c1: number; cols: number; width: number; count: number } {
  const rowsTotal = entry.shape[0] ?? 1;
  const cols = entry.shape.length >= 2 ? elementCount(entry.shape.slice(1)) : 1;
  const [r0, r1] = slice.rows ?? [0, rowsTotal];
  const [c0, c1] = slice.cols ?? [0, cols];
  if (!(0 <= r0 && r0 <= r1 && r1 <= rowsTotal && 0 <= c0 && c0 <= c1 && c1 <= cols))
    throw new ModelLoadError(entry.file, `slice rows [${r0}, ${r1}) cols [${c0}, ${c1}) is outside shape [${entry.shape.join(', ')}]`, { tensor: entry.name });
  return { r0, r1, c0, c1, cols, width: c1 - c0, count: (r1 - r0) * (c1 - c0) };
}

/**
 * Reads the raw bytes of a 1-byte-element tensor (F8_E4M3 codes), or a slice
 * of its rows / columns, into dst at byte dstOffset, as stored. Returns the
 * number of elements written.
 */
export function readBytesInto(entry: TensorEntry, dst: Uint8Array, dstOffset = 0, slice: TensorSlice = {}): number {
  if (DTYPE_BYTES[entry.dtype] !== 1)
    throw new ModelLoadError(entry.file, `readBytesInto reads 1-byte elements, not ${entry.dtype}`, { tensor: entry.name });
  const { r0, r1, c0, c1, cols, width, count } = sliceOf(entry, slice);
  if (dstOffset + count > dst.length)
    throw new ModelLoadError(entry.file, `destination holds ${dst.length - dstOffset} bytes, the tensor needs ${count}`, { tensor: entry.name });
  const fd = openSync(entry.file, 'r');
  try {
    if (width === cols) {
      readExactly(fd, dst.subarray(dstOffset, dstOffset + count), entry.begin + r0 * cols, entry.file, `tensor ${entry.name}`);
      return count;
    }
    // Whole rows in chunks, then the wanted columns of each.
    const rowsPerChunk = Math.max(1, Math.floor(READ_CHUNK / cols));
    const stage = new Uint8Array(Math.min(r1 - r0, rowsPerChunk) * cols);
    for (let r = r0; r < r1; r += rowsPerChunk) {
      const nr = Math.min(rowsPerChunk, r1 - r);
      const buf = stage.subarray(0, nr * cols);
      readExactly(fd, buf, entry.begin + r * cols, entry.file, `tensor ${entry.name}`);
      for (let i = 0; i < nr; i++) dst.set(buf.subarray(i * cols + c0, i * cols + c1), dstOffset + (r - r0 + i) * width);
    }
    return count;
  } finally {
    closeSync(fd);
  }
}
