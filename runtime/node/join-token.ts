// The join token: the one secret a leader and its nodes share. It never
// crosses the wire; both sides derive the TLS pre-shared key from it
// (tls-link.ts), so a peer that completes the handshake knows the token.
//
// Strength: a token's entropy is estimated as length x log2(alphabet), the
// alphabet being the smallest of hex, base64url, or printable ASCII that
// holds every character; under 128 bits it is refused. `openssl rand -hex 32`
// makes a good one.
import { hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';

const MIN_TOKEN_BITS = 128;
/** Longer tokens add nothing and only cost hashing. */
const MAX_TOKEN_CHARS = 1024;

class WeakTokenError extends Error {
  override name = 'WeakTokenError';
}

function estimateTokenBits(token: string): number {
  const alphabet = /^[0-9a-fA-F]*$/.test(token) ? 16 : /^[A-Za-z0-9_-]*$/.test(token) ? 64 : 95;
  const distinct = new Set(token).size;
  // a token of few distinct characters ("aaaa...") is as weak as its alphabet of those
  return token.length * Math.log2(Math.max(2, Math.min(alphabet, distinct)));
}

/** Throws WeakTokenError for a missing, non-ASCII, too long, or under-128-bit token. */
export function checkJoinToken(token: string): string {
  if (!token) throw new WeakTokenError('a join token is required (--join-token-file FILE, or TROUPE_JOIN_TOKEN)');
  if (token.length > MAX_TOKEN_CHARS) throw new WeakTokenError(`the join token is longer than ${MAX_TOKEN_CHARS} characters`);
  if (!/^[\x20-\x7e]+$/.test(token)) throw new WeakTokenError('the join token must be printable ASCII');
  const bits = estimateTokenBits(token);
  if (bits < MIN_TOKEN_BITS) {
    throw new WeakTokenError(`the join token is too weak (~${Math.floor(bits)} bits, at least ${MIN_TOKEN_BITS} needed); make one with \`openssl rand -hex 32\``);
  }
  return token;
}

/** The token from, in order: a file (first line, trimmed), the flag, the environment. */
export function readJoinToken(sources: { file?: string | undefined; flag?: string | undefined; env?: string | undefined }): string {
  if (sources.file) {
    const text = readFileSync(sources.file, 'utf8');
    return text.split(/\r?\n/, 1)[0]!.trim();
  }
  return sources.flag ?? sources.env ?? '';
}

/** The 32-byte TLS pre-shared key for node links (HKDF-SHA256 of the token). */
export function linkKey(token: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(token, 'utf8'), Buffer.from('troupe node link'), Buffer.from('tls-psk v1'), 32));
}
