// The structured logger (levels, text and JSON formats), the request log
// line, and vLLM's periodic engine stats line.
import test from 'ava';
import { EngineStats, EngineStatsLog, type StatsSample } from '../../gateway/engine-stats-log.js';
import { createLogger, parseLogLevel, textLine } from '../../gateway/logger.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generatedModel } from '../models/helpers.js';
import { eventually, startGateway, TEST_MODEL_NAME } from './helpers.js';

const CLI = fileURLToPath(new URL('../../cli/troupe.js', import.meta.url));

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
}

test('JSON format: one object per line, with the level\'s name and the fields; levels below --log-level dropped', (t) => {
  const { lines, destination } = capture();
  const logger = createLogger({ level: 'info', format: 'json', destination });
  logger.debug('not shown');
  logger.info({ route: '/v1/completions', prompt_tokens: 3 }, 'request finished');
  logger.warn('careful');
  t.is(lines.length, 2);
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.like(first, { level: 'info', msg: 'request finished', route: '/v1/completions', prompt_tokens: 3 });
  t.regex(String(first['time']), /^\d{4}-\d\d-\d\dT/);
  t.like(JSON.parse(lines[1]!), { level: 'warn', msg: 'careful' });
});

test('text format: LEVEL date time [troupe] message key=value', (t) => {
  const { lines, destination } = capture();
  createLogger({ level: 'debug', format: 'text', destination }).debug({ a: 1, b: 'two words' }, 'hello');
  t.regex(lines[0]!, /^DEBUG \d\d-\d\d \d\d:\d\d:\d\d \[troupe\] hello a=1 b="two words"\n$/);
  t.is(textLine('{"level":"warn","time":"2026-12-02T15:49:12.345Z","msg":"x"}'), 'WARN 12-02 15:49:12 [troupe] x\n');
  t.throws(() => parseLogLevel('loud'), { message: /--log-level must be one of fatal, error, warn, info, debug, trace, silent/ });
});

const sampleAt = (atMs: number, promptTokens: number, generationTokens: number, usage: Partial<StatsSample['usage']> = {}): StatsSample => ({
  atMs, promptTokens, generationTokens, usage: { running: 0, waiting: 0, usage: 0, prefixQueries: 0, prefixHits: 0, ...usage },
});

test('the engine stats line: throughputs over the interval, requests, KV usage, the interval\'s prefix hit rate', (t) => {
  const stats = new EngineStats();
  t.is(stats.line(sampleAt(0, 0, 0)), null, 'the first sample only sets the baseline');
  const busy = stats.line(sampleAt(10_000, 1200, 481, { running: 3, waiting: 1, usage: 0.125, prefixQueries: 1000, prefixHits: 400 }))!;
  t.is(busy.text, 'Avg prompt throughput: 120.0 tokens/s, Avg generation throughput: 48.1 tokens/s, Running: 3 reqs, Waiting: 1 reqs, KV cache usage: 12.5%, Prefix cache hit rate: 40.0%');
  t.false(busy.idle);
  const idle = stats.line(sampleAt(20_000, 1200, 481, { usage: 0, prefixQueries: 1000, prefixHits: 400 }))!;
  t.true(idle.idle);
  t.regex(idle.text, /Avg prompt throughput: 0\.0 tokens\/s.*Prefix cache hit rate: 0\.0%/);
});

test('EngineStatsLog logs busy intervals at info and idle ones at debug', async (t) => {
  const { lines, destination } = capture();
  const logger = createLogger({ level: 'info', format: 'json', destination });
  let tokens = 0;
  const log = new EngineStatsLog(logger, async () => sampleAt(performance.now(), (tokens += 50), 0, { running: 1 }), 0.05, true).start();
  t.true(await eventually(() => lines.length >= 2));
  log.stop();
  t.true(lines.length >= 2, `${lines.length} lines`);
  const record = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.regex(String(record['msg']), /^Avg prompt throughput: [\d.]+ tokens\/s, .*Running: 1 reqs/);
  t.true((record['prompt_throughput'] as number) > 0);
});

test('--enable-log-requests: one line per request with id, route, tokens, TTFT, total time and finish reason', async (t) => {
  const { lines, destination } = capture();
  const logger = createLogger({ level: 'info', format: 'json', destination });
  const gateway = await startGateway({ gateway: { logger, logRequests: true, requestIdHeaders: true } });
  t.teardown(() => gateway.close());
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'X-Request-Id': 'trace-7' },
    body: JSON.stringify({ model: TEST_MODEL_NAME, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ignore_eos: true, n: 2, stream: true }),
  });
  await response.text();
  const bad = await fetch(`${gateway.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: TEST_MODEL_NAME, prompt: 'x', max_tokens: 100_000 }) });
  t.is(bad.status, 400);
  await bad.text();
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r['msg'] === 'request finished');
  t.is(records.length, 2);
  const line = records[0]!;
  t.like(line, { request_id: 'trace-7', route: '/v1/chat/completions', output_tokens: 8, finish_reason: 'length' });
  t.true((line['prompt_tokens'] as number) > 0);
  t.true((line['ttft_ms'] as number) > 0 && (line['ttft_ms'] as number) <= (line['total_ms'] as number));
  t.like(records[1], { route: '/v1/completions', output_tokens: 0, finish_reason: 'failed' });
  t.regex(String(records[1]!['error']), /maximum context length/);
});

test('troupe serve --log-format json: every stdout line is JSON, request lines and stats lines included', async (t) => {
  const child = spawn(process.execPath, [CLI, 'serve', generatedModel('tiny', 7), '--port', '0', '--threads', '1', '--served-model-name', 'tiny-json',
    '--log-format', 'json', '--enable-log-requests', '--log-stats-interval', '0.2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const records = () => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.true(await eventually(() => /OpenAI API on http/.test(stdout), 60_000), stdout);
  const url = /OpenAI API on (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(stdout)![1]!;
  const response = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: 'tiny-json', prompt: 'hello there', max_tokens: 8, ignore_eos: true }) });
  t.is(response.status, 200);
  await response.json();
  t.true(await eventually(() => records().some((r) => typeof r['msg'] === 'string' && /^Avg prompt throughput: [\d.]+ tokens\/s/.test(r['msg'] as string) && (r['generation_throughput'] as number) > 0), 30_000), 'a busy stats line');
  // the line is written after the response, and read from another process's pipe: wait for it
  t.true(await eventually(() => records().some((r) => r['msg'] === 'request finished'), 30_000), 'a request line');
  const request = records().find((r) => r['msg'] === 'request finished');
  t.like(request, { level: 'info', route: '/v1/completions', output_tokens: 8, finish_reason: 'length' });
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
  for (const record of records()) t.true(typeof record['level'] === 'string' && typeof record['msg'] === 'string');
});
