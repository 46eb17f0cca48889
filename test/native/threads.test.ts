// The addon is context-aware: loaded at once in the main thread and two
// worker threads, each computes the same bits; a worker exiting does not
// disturb the others (each environment owns its addon instance).
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { loadNative, type Isa } from '../../native/index.js';
import { loadProbes } from '../../native/probes.js';
import { toBf16Array } from './bf16.js';
import { assertBitwiseEqual } from './helpers.js';
import { randomFloat32, rng } from './random.js';

const WORKER_URL = new URL('./fixtures/matmul-worker.js', import.meta.url);

interface Done {
  kind: 'done';
  threadId: number;
  selected: Isa;
  results: Partial<Record<Isa, Float32Array>>;
}

function nextMessage<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

test('the addon loads and runs in the main thread and 2 worker threads at once', async (t) => {
  const [M, N, K] = [3, 10, 257];
  const next = rng(42);
  // Inputs in SharedArrayBuffers: the workers read the very same memory.
  const w = new Uint16Array(new SharedArrayBuffer(N * K * 2));
  w.set(toBf16Array(randomFloat32(N * K, next)));
  const x = new Float32Array(new SharedArrayBuffer(M * K * 4));
  x.set(randomFloat32(M * K, next));

  const native = loadNative();
  const probes = loadProbes();
  const workers = [0, 1].map(() => new Worker(WORKER_URL, { workerData: { w, x, M, N, K } }));
  try {
    const ready = await Promise.all(workers.map((wk) => nextMessage<{ kind: string; threadId: number }>(wk)));
    t.deepEqual(ready.map((r) => r.kind), ['ready', 'ready'], 'both workers loaded the addon');
    t.not(ready[0]!.threadId, ready[1]!.threadId);

    // All three instances are alive now; run them concurrently.
    const done = Promise.all(workers.map((wk) => nextMessage<Done>(wk)));
    for (const wk of workers) wk.postMessage('go');
    const mine: Partial<Record<Isa, Float32Array>> = {};
    for (const isa of native.availableIsas()) {
      const out = new Float32Array(M * N);
      probes.matmulBf16(w, x, out, M, N, K, isa);
      mine[isa] = out;
    }
    const results = await done;

    for (const r of results) {
      t.is(r.kind, 'done');
      t.is(r.selected, native.selectedIsa());
      t.deepEqual(Object.keys(r.results).sort(), native.availableIsas().sort(), `worker ${r.threadId} ran every ISA`);
      for (const isa of native.availableIsas()) {
        assertBitwiseEqual(t, r.results[isa]!, mine[isa]!, `worker ${r.threadId} ${isa} vs main thread`);
      }
    }
  } finally {
    await Promise.all(workers.map(async (wk) => wk.terminate()));
  }

  // After the workers' environments are gone, main's instance and a fresh worker still work.
  const again = new Float32Array(M * N);
  probes.matmulBf16(w, x, again, M, N, K, native.selectedIsa());
  t.true(again.every((v) => Number.isFinite(v)));
  const late = new Worker(WORKER_URL, { workerData: { w, x, M, N, K } });
  try {
    t.is((await nextMessage<{ kind: string }>(late)).kind, 'ready');
    late.postMessage('go');
    const r = await nextMessage<Done>(late);
    assertBitwiseEqual(t, r.results[native.selectedIsa()]!, again, 'worker started after others exited');
  } finally {
    await late.terminate();
  }
});
