// Drives the serving benchmark: requests leave at the arrival times the
// request rate draws, at most --max-concurrency in flight, each timed by the
// client; the duration runs from the first send to the last answer.
import { Presets, SingleBar } from 'cli-progress';
import { sendRequest, type RequestOutcome, type TargetServer } from './client.js';
import type { BenchRequest } from './dataset.js';
import { servingFigures, type ServingFigures } from './metrics.js';
import { arrivalGaps, SeededRandom } from './random.js';

export interface ServingRunOptions {
  requestRate: number;
  burstiness: number;
  maxConcurrency: number | null;
  seed: number;
  progress: boolean;
}

export interface ServingRun {
  figures: ServingFigures;
  outcomes: RequestOutcome[];
}

export async function runServing(server: TargetServer, requests: BenchRequest[], options: ServingRunOptions): Promise<ServingRun> {
  const gaps = arrivalGaps(requests.length, options.requestRate, options.burstiness, new SeededRandom(options.seed + 1));
  const bar = options.progress ? new SingleBar({ format: 'requests {bar} {value}/{total} | {duration}s', stream: process.stderr }, Presets.shades_classic) : null;
  bar?.start(requests.length, 0);
  const limit = new Semaphore(options.maxConcurrency ?? Number.POSITIVE_INFINITY);
  const start = performance.now();
  const pending: Promise<RequestOutcome>[] = [];
  for (let i = 0; i < requests.length; i++) {
    if (gaps[i]! > 0) await sleep(gaps[i]! * 1000);
    pending.push(limit.run(async () => {
      const outcome = await sendRequest(server, requests[i]!);
      bar?.increment();
      return outcome;
    }));
  }
  const outcomes = await Promise.all(pending);
  const durationS = (performance.now() - start) / 1000;
  bar?.stop();
  return { figures: servingFigures(outcomes, durationS), outcomes };
}

class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    // a finishing request hands its slot straight to the next waiter, so nobody slips in between
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
