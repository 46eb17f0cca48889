// Cross-origin rules, as vLLM's (Starlette's CORSMiddleware) with its
// defaults: every origin, method and header allowed, no credentials. A plain
// class: the server asks it for the headers of a response and for the answer
// to a preflight; the WebSocket upgrade asks it whether an Origin may connect.
//
//   simple request, Origin allowed   -> Access-Control-Allow-Origin (+ Vary: Origin when it names the origin)
//   simple request, Origin refused   -> no CORS headers (the browser withholds the response)
//   preflight (OPTIONS + Origin + Access-Control-Request-Method)
//     allowed -> 200, Allow-Origin / -Methods / -Headers, Max-Age 600
//     refused -> 400 naming the origin, method or headers refused
//   WebSocket upgrade with an Origin not allowed -> 403 (no Origin: not a browser, allowed)

export interface CorsOptions {
  /** "*" or exact origins ("https://app.example.com"). */
  allowedOrigins: string[];
  /** "*" or method names. */
  allowedMethods: string[];
  /** "*" or header names (case-insensitive). */
  allowedHeaders: string[];
  /** Access-Control-Allow-Credentials: true (the origin is then echoed, never "*"). */
  allowCredentials: boolean;
}

export const DEFAULT_CORS: CorsOptions = { allowedOrigins: ['*'], allowedMethods: ['*'], allowedHeaders: ['*'], allowCredentials: false };

/** Methods the "*" of --allowed-methods stands for in a preflight answer (Starlette's list). */
const ALL_METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'];
const PREFLIGHT_MAX_AGE_S = '600';

export type Headers = Record<string, string>;

export type PreflightAnswer = { ok: true; headers: Headers } | { ok: false; refused: string };

export class CorsPolicy {
  private readonly anyOrigin: boolean;
  private readonly origins: Set<string>;
  private readonly anyMethod: boolean;
  private readonly methods: string[];
  private readonly anyHeader: boolean;
  private readonly headers: Set<string>;

  constructor(readonly options: CorsOptions = DEFAULT_CORS) {
    this.anyOrigin = options.allowedOrigins.includes('*');
    this.origins = new Set(options.allowedOrigins);
    this.anyMethod = options.allowedMethods.includes('*');
    this.methods = this.anyMethod ? ALL_METHODS : options.allowedMethods.map((m) => m.toUpperCase());
    this.anyHeader = options.allowedHeaders.includes('*');
    this.headers = new Set(options.allowedHeaders.map((h) => h.toLowerCase()));
  }

  originAllowed(origin: string): boolean {
    return this.anyOrigin || this.origins.has(origin);
  }

  /** Headers for an ordinary response to a request that sent `origin` ("" when none). */
  responseHeaders(origin: string): Headers {
    if (!origin || !this.originAllowed(origin)) return {};
    const headers: Headers = {};
    if (this.anyOrigin && !this.options.allowCredentials) {
      headers['Access-Control-Allow-Origin'] = '*';
    } else {
      headers['Access-Control-Allow-Origin'] = origin;
      headers['Vary'] = 'Origin';
    }
    if (this.options.allowCredentials) headers['Access-Control-Allow-Credentials'] = 'true';
    return headers;
  }

  /** The answer to a preflight: `requestMethod` and `requestHeaders` are its Access-Control-Request-* values. */
  preflight(origin: string, requestMethod: string, requestHeaders: string): PreflightAnswer {
    const refused: string[] = [];
    if (!this.originAllowed(origin)) refused.push(`origin ${origin}`);
    const method = requestMethod.toUpperCase();
    if (!this.anyMethod && !this.methods.includes(method)) refused.push(`method ${method}`);
    const asked = requestHeaders.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
    const badHeaders = this.anyHeader ? [] : asked.filter((h) => !this.headers.has(h) && !SAFELISTED_HEADERS.has(h));
    if (badHeaders.length) refused.push(`headers ${badHeaders.join(', ')}`);
    if (refused.length) return { ok: false, refused: refused.join('; ') };
    const headers: Headers = {
      ...this.responseHeaders(origin),
      'Access-Control-Allow-Methods': this.methods.join(', '),
      'Access-Control-Max-Age': PREFLIGHT_MAX_AGE_S,
    };
    const allowHeaders = this.anyHeader ? asked : [...this.headers];
    if (allowHeaders.length) headers['Access-Control-Allow-Headers'] = allowHeaders.join(', ');
    if (!this.anyOrigin || this.options.allowCredentials) headers['Vary'] = 'Origin';
    return { ok: true, headers };
  }
}

/** Request headers a browser may always send cross-origin (the Fetch standard's CORS-safelisted ones). */
const SAFELISTED_HEADERS = new Set(['accept', 'accept-language', 'content-language', 'content-type']);

/**
 * A list flag's value: vLLM passes JSON lists (--allowed-origins '["https://a.example"]');
 * a comma-separated list or a single value is accepted too.
 */
export function parseListFlag(flag: string, text: string): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      throw new Error(`${flag} must be a JSON list of strings or a comma-separated list, got ${text}: ${(error as Error).message}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string' && v.length > 0)) {
      throw new Error(`${flag} must be a JSON list of non-empty strings, got ${text}`);
    }
    return parsed;
  }
  const values = trimmed.split(',').map((v) => v.trim()).filter(Boolean);
  if (values.length === 0) throw new Error(`${flag} needs at least one value`);
  return values;
}
