// Actor runtime benchmark: ask round-trip latency and one-way message
// throughput, in-thread and across a worker thread, with 1 KB and 1 MB
// payloads. The peer baseline, measured in the same run, is a bare worker
// thread with postMessage and a transfer list (no runtime): the ratio says
// what the runtime costs on top of what Node itself allows.
//
//   npm run bench            (node dist/bench/actors.bench.js)
import { Worker } from 'node:worker_threads';
import { ActorSystem, moduleActor } from '../runtime/index.js';
import type { EchoMessage } from './fixtures/echo-actor.js';
import { median, writeRecord } from './record.js';

const SIZES = [{ label: '1KB', bytes: 1024 }, { label: '1MB', bytes: 1 << 20 }];
const ROUND_TRIPS = { '1KB': 2000, '1MB': 200 } as Record<string, number>;
const MESSAGES = { '1KB': 20000, '1MB': 300 } as Record<string, number>;
const REPEATS = 5;

type Figures = Record<string, number>;

async function actorFigures(placement: 'local' | 'thread', label: string, bytes: number): Promise<Figures> {
  const system = new ActorSystem();
  const echo = await system.spawn<EchoMessage>('echo', moduleActor(new URL('./fixtures/echo-actor.js', import.meta.url), 'EchoActor', [], {
    placement, mailbox: { capacity: 1 << 20 },
  }));
  const latencies: number[] = [];
  const rates: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    let payload: Uint8Array = new Uint8Array(bytes);
    const n = ROUND_TRIPS[label]!;
    const start = performance.now();
    for (let i = 0; i < n; i++) payload = await echo.ask<Uint8Array>((replyTo) => ({ type: 'echo', payload, replyTo }));
    latencies.push(((performance.now() - start) / n) * 1000);

    const m = MESSAGES[label]!;
    const before = await echo.ask<number>((replyTo) => ({ type: 'count', replyTo }));
    const t0 = performance.now();
    for (let i = 0; i < m; i++) echo.tell({ type: 'sink', payload: new Uint8Array(bytes) });
    const after = await echo.ask<number>((replyTo) => ({ type: 'count', replyTo }), { timeoutMs: 60_000 });
    if (after - before !== m) throw new Error(`lost messages: ${after - before} of ${m}`);
    rates.push(m / ((performance.now() - t0) / 1000));
  }
  await system.shutdown();
  return { askRoundTripUs: median(latencies), messagesPerSecond: median(rates), megabytesPerSecond: (median(rates) * bytes) / 1e6 };
}

async function rawWorkerFigures(label: string, bytes: number): Promise<Figures> {
  const worker = new Worker(new URL('./fixtures/raw-echo-worker.js', import.meta.url));
  const next = () => new Promise<unknown>((resolve) => worker.once('message', resolve));
  const latencies: number[] = [];
  const rates: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    let payload: Uint8Array = new Uint8Array(bytes);
    const n = ROUND_TRIPS[label]!;
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const reply = next();
      worker.postMessage({ payload, echo: true }, [payload.buffer as ArrayBuffer]);
      payload = (await reply) as Uint8Array;
    }
    latencies.push(((performance.now() - start) / n) * 1000);
    const m = MESSAGES[label]!;
    const t0 = performance.now();
    for (let i = 0; i < m; i++) {
      const data = new Uint8Array(bytes);
      worker.postMessage({ payload: data, echo: false }, [data.buffer]);
    }
    const counted = next();
    worker.postMessage('count');
    await counted;
    rates.push(m / ((performance.now() - t0) / 1000));
  }
  await worker.terminate();
  return { askRoundTripUs: median(latencies), messagesPerSecond: median(rates), megabytesPerSecond: (median(rates) * bytes) / 1e6 };
}

const figures: Record<string, Record<string, Figures | Record<string, number>>> = {};
for (const { label, bytes } of SIZES) {
  const local = await actorFigures('local', label, bytes);
  const thread = await actorFigures('thread', label, bytes);
  const raw = await rawWorkerFigures(label, bytes);
  figures[label] = {
    local,
    thread,
    rawWorkerBaseline: raw,
    threadVsBaseline: {
      latencyRatio: thread.askRoundTripUs! / raw.askRoundTripUs!,
      throughputRatio: thread.messagesPerSecond! / raw.messagesPerSecond!,
    },
  };
  const f = (x: number, d = 1) => x.toFixed(d);
  console.log(`${label.padEnd(4)} ask round trip  local ${f(local.askRoundTripUs!)} µs   thread ${f(thread.askRoundTripUs!)} µs   bare worker ${f(raw.askRoundTripUs!)} µs   (thread/bare ${f(thread.askRoundTripUs! / raw.askRoundTripUs!, 2)}×)`);
  console.log(`${label.padEnd(4)} throughput      local ${f(local.messagesPerSecond!, 0)} msg/s   thread ${f(thread.messagesPerSecond!, 0)} msg/s (${f(thread.megabytesPerSecond!, 0)} MB/s)   bare worker ${f(raw.messagesPerSecond!, 0)} msg/s   (thread/bare ${f(thread.messagesPerSecond! / raw.messagesPerSecond!, 2)})`);
}
console.log(`medians of ${REPEATS} runs; record: ${writeRecord('actors', figures)}`);
