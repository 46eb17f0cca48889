// Actor runtime benchmark: ask round-trip latency and one-way message
// throughput per placement (in-thread, worker thread, child process, TCP node
// on 127.0.0.1), with 1 KB and 1 MB payloads. The peer baseline, measured in the same run, is a bare worker
// thread with postMessage and a transfer list (no runtime): the ratio says
// what the runtime costs on top of what Node itself allows.
//
//   npm run bench            (node dist-test/bench/actors.bench.js)
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ActorSystem, moduleActor, type ActorSpec } from '../runtime/index.js';
import { NodeListener } from '../runtime/node/listener.js';
import type { EchoMessage } from './fixtures/echo-actor.js';
import { median, writeRecord } from './record.js';

const SIZES = [{ label: '1KB', bytes: 1024 }, { label: '1MB', bytes: 1 << 20 }];
const ROUND_TRIPS = { '1KB': 2000, '1MB': 200 } as Record<string, number>;
const MESSAGES = { '1KB': 20000, '1MB': 300 } as Record<string, number>;
const REPEATS = 5;

type Figures = Record<string, number>;

type BenchPlacement = 'local' | 'thread' | 'process' | 'node';

/** A system with the echo actor placed as asked; for 'node', a listener plus a `troupe node` agent process. */
async function echoSystem(placement: BenchPlacement) {
  const system = new ActorSystem();
  let cleanup = async () => {};
  let where: ActorSpec<EchoMessage>['placement'] = placement === 'node' ? { node: 'bench' } : placement;
  if (placement === 'node') {
    const token = randomBytes(32).toString('hex');
    const listener = await NodeListener.listen(system, { token });
    const cli = fileURLToPath(new URL('../cli/troupe.js', import.meta.url));
    const agent = spawn(process.execPath, [cli, 'node', '--join', `127.0.0.1:${listener.address.port}`, '--name', 'bench'], { stdio: 'ignore', env: { ...process.env, TROUPE_JOIN_TOKEN: token } });
    await listener.waitForNode('bench');
    cleanup = async () => { agent.kill('SIGKILL'); await listener.close(); };
    where = { node: 'bench' };
  }
  const echo = await system.spawn<EchoMessage>('echo', moduleActor(new URL('./fixtures/echo-actor.js', import.meta.url), 'EchoActor', [], {
    placement: where, mailbox: { capacity: 1 << 20 },
  }));
  return { system, echo, cleanup };
}

async function actorFigures(placement: BenchPlacement, label: string, bytes: number): Promise<Figures> {
  const { system, echo, cleanup } = await echoSystem(placement);
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
  await cleanup();
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

const PLACEMENTS: BenchPlacement[] = ['local', 'thread', 'process', 'node'];
const figures: Record<string, Record<string, unknown>> = {};
const f = (x: number, d = 1) => x.toFixed(d);
for (const { label, bytes } of SIZES) {
  const raw = await rawWorkerFigures(label, bytes);
  const row: Record<string, unknown> = { bareWorkerBaseline: raw };
  console.log(`${label}: bare worker (postMessage + transfer, no runtime): round trip ${f(raw.askRoundTripUs!)} µs, ${f(raw.messagesPerSecond!, 0)} msg/s`);
  for (const placement of PLACEMENTS) {
    const got = await actorFigures(placement, label, bytes);
    row[placement] = { ...got, latencyVsBareWorker: got.askRoundTripUs! / raw.askRoundTripUs!, throughputVsBareWorker: got.messagesPerSecond! / raw.messagesPerSecond! };
    console.log(`${label}  ${placement.padEnd(7)} ask round trip ${f(got.askRoundTripUs!).padStart(7)} µs (${f(got.askRoundTripUs! / raw.askRoundTripUs!, 2)}× bare)   ` +
      `throughput ${f(got.messagesPerSecond!, 0).padStart(8)} msg/s, ${f(got.megabytesPerSecond!, 0)} MB/s (${f(got.messagesPerSecond! / raw.messagesPerSecond!, 2)}× bare)`);
  }
  figures[label] = row;
}
console.log(`medians of ${REPEATS} runs; record: ${writeRecord('actors', figures)}`);
process.exit(0);
