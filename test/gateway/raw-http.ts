// A raw HTTP/1.1 client over net sockets, for what fetch will not send
// (broken bodies, lying headers, invalid UTF-8) and for disconnecting on
// purpose. Every request has a deadline and always settles.
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

export interface RawOptions {
  /** Give up (and destroy the socket) after this long; default 10 s. */
  timeoutMs?: number;
  /** Called with each piece of the response as it arrives; return true to hang up then. */
  onData?: (soFar: string, socket: Socket) => boolean | void;
}

/** Sends `request` (a whole HTTP request, headers and body) and reads until the server closes or the response is complete. */
export function rawRequest(port: number, request: string | Buffer | (string | Buffer)[], options: RawOptions = {}): Promise<RawResponse | null> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (response: RawResponse | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(response);
    };
    const timer = setTimeout(() => finish(parse(Buffer.concat(chunks))), options.timeoutMs ?? 10_000);
    socket.on('error', () => finish(parse(Buffer.concat(chunks))));
    socket.on('data', (data) => {
      chunks.push(data);
      const soFar = Buffer.concat(chunks);
      if (options.onData?.(soFar.toString('utf8'), socket)) return finish(parse(soFar));
      if (complete(soFar)) finish(parse(soFar));
    });
    socket.on('close', () => finish(parse(Buffer.concat(chunks))));
    socket.on('connect', () => {
      for (const part of Array.isArray(request) ? request : [request]) socket.write(part);
    });
  });
}

/** A POST with a JSON (or any) body and a correct Content-Length. */
export function post(path: string, body: string | Buffer, headers: Record<string, string> = {}): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const head = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Content-Type: application/json', `Content-Length: ${bytes.length}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  return Buffer.concat([Buffer.from(head), bytes]);
}

function complete(data: Buffer): boolean {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const head = data.subarray(0, end).toString('latin1');
  const length = /content-length:\s*(\d+)/i.exec(head);
  if (length) return data.length - end - 4 >= Number(length[1]);
  if (/transfer-encoding:\s*chunked/i.test(head)) return data.subarray(end).includes('\r\n0\r\n\r\n');
  return false;
}

function parse(data: Buffer): RawResponse | null {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = data.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = data.subarray(end + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  return { status, headers, body: body.toString('utf8'), raw: data.toString('utf8') };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
