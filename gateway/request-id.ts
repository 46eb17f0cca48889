// X-Request-Id, as vLLM's --enable-request-id-headers: a request's id comes
// from its X-Request-Id header, or is made up here, and every response
// carries it back in the same header. Request log lines name it.
import { randomUUID } from 'node:crypto';
import { badRequest } from './errors.js';

export const REQUEST_ID_HEADER = 'X-Request-Id';

/** Visible ASCII, as a header value can hold it in a log line without escaping. */
const VALID_ID = /^[\x21-\x7e]{1,256}$/;

/** The client's id (`header`, "" when absent), or a new one; a 400 names what is wrong with a bad one. */
export function requestIdFrom(header: string): string {
  if (header === '') return randomUUID().replaceAll('-', '');
  if (!VALID_ID.test(header)) throw badRequest(`the ${REQUEST_ID_HEADER} header must be 1 to 256 visible ASCII characters (no spaces)`);
  return header;
}
