// A streaming safetensors writer: tensors are appended one at a time (each
// as a sequence of byte chunks) to a data file; finish() writes the header
// in front. Shapes and byte counts are checked as tensors are written.
import { closeSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { elementCount } from '../safetensors.js';

const BYTES: Record<string, number> = { F8_E4M3: 1, F8_E5M2: 1, BF16: 2, F16: 2, F32: 4, I32: 4 };

export class SafetensorsWriter {
  private readonly dataFile: string;
  private readonly fd: number;
  private offset = 0;
  private readonly header: Record<string, unknown> = { __metadata__: { format: 'pt' } };

  constructor(private readonly file: string) {
    this.dataFile = `${file}.data.tmp`;
    this.fd = openSync(this.dataFile, 'w');
  }

  tensor(name: string, dtype: string, shape: readonly number[], produce: (emit: (bytes: Uint8Array) => void) => void): void {
    const expected = elementCount(shape) * (BYTES[dtype] ?? NaN);
    const begin = this.offset;
    produce((bytes) => {
      let done = 0;
      while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done);
      this.offset += bytes.length;
    });
    if (this.offset - begin !== expected) throw new Error(`tensor ${name}: wrote ${this.offset - begin} bytes, ${dtype} [${shape.join(', ')}] needs ${expected}`);
    this.header[name] = { dtype, shape: [...shape], data_offsets: [begin, this.offset] };
  }

  /** Writes header + data into the final file; returns its size. */
  finish(): number {
    closeSync(this.fd);
    let json = JSON.stringify(this.header);
    json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
    const jsonBytes = Buffer.from(json, 'utf8');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(jsonBytes.length));
    const out = openSync(`${this.file}.tmp`, 'w');
    writeSync(out, prefix);
    writeSync(out, jsonBytes);
    const data = openSync(this.dataFile, 'r');
    const chunk = Buffer.allocUnsafe(16 * 1024 * 1024);
    for (let position = 0; position < this.offset;) {
      const n = readSync(data, chunk, 0, Math.min(chunk.length, this.offset - position), position);
      writeSync(out, chunk, 0, n);
      position += n;
    }
    closeSync(data);
    closeSync(out);
    rmSync(this.dataFile);
    renameSync(`${this.file}.tmp`, this.file);
    return 8 + jsonBytes.length + this.offset;
  }
}
