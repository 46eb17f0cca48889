// The server's logger (pino): levels from --log-level, and two formats from
// --log-format:
//
//   text  INFO 12-02 15:49:12 [troupe] Avg prompt throughput: 12.0 tokens/s, ... key=value ...
//   json  {"level":"info","time":"2026-12-02T15:49:12.345Z","msg":"...", ...fields}
//
// Text lines are made from pino's JSON line by the destination below, so
// both formats carry the same fields.
import { pino, stdTimeFunctions, type Logger } from 'pino';

export type { Logger } from 'pino';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where lines go: one string per call, each ending in a newline. */
interface LogDestination {
  write(line: string): void;
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Default: stdout. */
  destination?: LogDestination;
}

export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? process.stdout;
  const destination = options.format === 'json' ? out : { write: (line: string) => out.write(textLine(line)) };
  return pino({
    level: options.level,
    base: null,
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
}

/** The level named by --log-level, or an error listing the levels. */
export function parseLogLevel(text: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${text}"`);
}

export function parseLogFormat(text: string): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(text)) return text as LogFormat;
  throw new Error(`--log-format must be text or json, got "${text}"`);
}

const OWN_KEYS = new Set(['level', 'time', 'msg']);

/** One pino JSON line as text: LEVEL MM-DD HH:MM:SS [troupe] msg key=value... */
export function textLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json; // not pino's: pass it through
  }
  const time = typeof record['time'] === 'string' ? record['time'] : new Date().toISOString();
  const stamp = `${time.slice(5, 10)} ${time.slice(11, 19)}`;
  const level = String(record['level'] ?? 'info').toUpperCase();
  const fields = Object.entries(record)
    .filter(([key]) => !OWN_KEYS.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`);
  const msg = typeof record['msg'] === 'string' ? record['msg'] : '';
  return `${level} ${stamp} [troupe] ${[msg, ...fields].filter(Boolean).join(' ')}\n`;
}
