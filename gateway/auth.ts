// --api-key: requests to /v1/*, /tokenize and /detokenize must carry
// "Authorization: Bearer <key>"; /health, /version and /metrics stay open.
// Keys are compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors.js';

/** Guarded paths outside /v1: they use the engine's tokenizer. */
const GUARDED = new Set(['/tokenize', '/detokenize']);

export class ApiKeyCheck {
  private readonly digests: Buffer[];

  /** No keys: every request passes. */
  constructor(keys: string[]) {
    this.digests = keys.map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** Whether `path` needs a key at all. */
  guards(path: string): boolean {
    return this.enabled && (path.startsWith('/v1') || GUARDED.has(path));
  }

  /** Throws a 401 unless `authorization` is "Bearer <one of the keys>". */
  check(authorization: string): void {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match) {
      const given = digest(match[1]!.trim());
      if (this.digests.some((d) => timingSafeEqual(d, given))) return;
    }
    throw new ApiError(401, 'Unauthorized: pass a valid API key as "Authorization: Bearer <key>"');
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}
