// Reading a request body from uWS: onData must be attached synchronously in
// the route handler, and each chunk's ArrayBuffer is only valid during its
// callback (uWS neuters it), so chunks are copied. Bodies over the limit are
// refused as soon as that is known, from Content-Length or while reading.
import type { HttpResponse } from '../uws.js';
import { ApiError, badRequest } from '../errors.js';

function tooLarge(limit: number): ApiError {
  return new ApiError(413, `the request body is larger than the server accepts (--max-request-bytes ${limit})`);
}

/** The client went away before its body arrived. */
export class ClientGoneError extends Error {
  constructor() {
    super('the client went away before sending its whole request body');
  }
}

/**
 * Starts reading now; resolves with the whole body, or rejects with a 413,
 * or with ClientGoneError when `onGone` reports the client left first.
 */
export function readBody(res: HttpResponse, maxBytes: number, declaredLength: string, onGone: (handler: () => void) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    onGone(() => reject(new ClientGoneError()));
    if (declaredLength && Number(declaredLength) > maxBytes) {
      reject(tooLarge(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    res.onData((chunk, isLast) => {
      if (failed) return;
      size += chunk.byteLength;
      if (size > maxBytes) {
        failed = true;
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(Buffer.from(new Uint8Array(chunk))); // a copy: `chunk` is neutered after this callback
      if (isLast) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
  });
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as JSON, or a 400 saying why not. */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw badRequest('the request body is empty; send a JSON object');
  let text: string;
  try {
    text = strictUtf8.decode(body);
  } catch {
    throw badRequest('the request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}
