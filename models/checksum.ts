// A model directory's checksum: sha256 over config.json and every weight
// file (name, size, contents), in a fixed order. A node that loads "the same
// model" from its own disk proves it by matching the leader's checksum.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Checkpoint } from './checkpoint.js';

const CHUNK = 8 * 1024 * 1024;

/** Every file the checksum covers, in its order. */
function checksumFiles(dir: string): string[] {
  const ckpt = Checkpoint.open(dir);
  return [join(ckpt.dir, 'config.json'), ...[...ckpt.files].sort()];
}

export function modelChecksum(dir: string): string {
  const hash = createHash('sha256');
  const files = checksumFiles(dir);
  const buffer = Buffer.allocUnsafe(CHUNK);
  for (const file of files) {
    const size = statSync(file).size;
    hash.update(`${basename(file)}\0${size}\0`);
    const fd = openSync(file, 'r');
    try {
      for (let position = 0; position < size;) {
        const n = readSync(fd, buffer, 0, Math.min(CHUNK, size - position), position);
        if (n === 0) break;
        hash.update(buffer.subarray(0, n));
        position += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return hash.digest('hex');
}

/**
 * modelChecksum() reading with awaits between chunks, so the event loop keeps
 * running (a node's heartbeats go on while it checks gigabytes of weights).
 */
export async function modelChecksumAsync(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(CHUNK);
  for (const file of checksumFiles(dir)) {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      hash.update(`${basename(file)}\0${size}\0`);
      for (let position = 0; position < size;) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK, size - position), position);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        position += bytesRead;
      }
    } finally {
      await handle.close();
    }
  }
  return hash.digest('hex');
}

export class ModelChecksumMismatchError extends Error {
  override name = 'ModelChecksumMismatchError';
  constructor(dir: string, expected: string, actual: string, where: string) {
    super(`${where}: the model at ${dir} is not the leader's (checksum ${actual.slice(0, 16)}..., the leader has ${expected.slice(0, 16)}...); ` +
      'copy the same model files to the same path on every node');
  }
}
