// Chained hashes of full KV blocks: hash_i = sha256(hash_{i-1} || tokens of
// block i). Two requests share block i's KV exactly when they share every
// token up to the end of block i, which is what the chain encodes.
import { createHash } from 'node:crypto';

const ROOT = 'troupe-kv-v1';

/** Extends `hashes` (full-block hashes so far) to cover every full block of the first `numTokens` tokens. */
export function extendBlockHashes(hashes: string[], numTokens: number, tokenAt: (i: number) => number, blockSize: number): string[] {
  const full = Math.floor(numTokens / blockSize);
  const block = new Int32Array(blockSize);
  for (let i = hashes.length; i < full; i++) {
    for (let j = 0; j < blockSize; j++) block[j] = tokenAt(i * blockSize + j);
    const hash = createHash('sha256');
    hash.update(i === 0 ? ROOT : hashes[i - 1]!);
    hash.update(new Uint8Array(block.buffer));
    hashes.push(hash.digest('base64'));
  }
  return hashes;
}
