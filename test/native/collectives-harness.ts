// Starts collective ranks (test/native/fixtures/collective-rank.ts) as worker
// threads or child processes and reads their messages in order.
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RankJob } from './fixtures/collective-rank.js';

export type Placement = 'thread' | 'process';
export const PLACEMENTS: readonly Placement[] = ['thread', 'process'];

const RANK_SCRIPT = new URL('./fixtures/collective-rank.js', import.meta.url);

export interface RankMessage {
  kind: string;
  rank: number;
  [key: string]: unknown;
}

export class RankRunner {
  readonly placement: Placement;
  readonly rank: number;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  #queue: RankMessage[] = [];
  #waiting: { resolve: (m: RankMessage) => void; reject: (e: Error) => void }[] = [];
  #ended: Error | undefined;
  #worker: Worker | undefined;
  #child: ChildProcess | undefined;

  constructor(placement: Placement, job: RankJob) {
    this.placement = placement;
    this.rank = job.rank;
    let onExit!: (r: { code: number | null; signal: string | null }) => void;
    this.exited = new Promise((resolve) => (onExit = resolve));
    if (placement === 'thread') {
      const w = new Worker(RANK_SCRIPT, { workerData: job });
      this.#worker = w;
      w.on('message', (m: RankMessage) => this.#deliver(m));
      w.on('error', (e) => this.#end(e));
      w.on('exit', (code) => {
        this.#end(new Error(`rank ${job.rank} (thread) exited with code ${code} before the awaited message`));
        onExit({ code, signal: null });
      });
    } else {
      const c = fork(fileURLToPath(RANK_SCRIPT), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      this.#child = c;
      c.on('message', (m) => this.#deliver(m as RankMessage));
      c.on('error', (e) => this.#end(e));
      // A message can still be in the pipe when 'exit' fires: end once the IPC channel is closed too.
      let exit: { code: number | null; signal: string | null } | undefined;
      const ended = () => {
        if (exit === undefined || c.connected) return;
        this.#end(new Error(`rank ${job.rank} (process ${c.pid}) exited (code ${exit.code}, signal ${exit.signal}) before the awaited message`));
        onExit(exit);
      };
      c.on('exit', (code, signal) => {
        exit = { code, signal };
        ended();
      });
      c.on('disconnect', ended);
      c.send({ kind: 'job', job });
    }
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The next message; with `kind`, the next message must be of that kind (a 'failed' one is returned as is). */
  async next(kind?: string): Promise<RankMessage> {
    const m = await new Promise<RankMessage>((resolve, reject) => {
      const queued = this.#queue.shift();
      if (queued) resolve(queued);
      else if (this.#ended) reject(this.#ended);
      else this.#waiting.push({ resolve, reject });
    });
    if (kind !== undefined && m.kind !== kind && m.kind !== 'failed') {
      throw new Error(`rank ${this.rank}: expected a '${kind}' message, got '${m.kind}'`);
    }
    return m;
  }

  send(msg: { kind: string }): void {
    if (this.#worker) this.#worker.postMessage(msg);
    else this.#child!.send(msg);
  }

  /** SIGKILL (process) / terminate (thread). */
  async kill(): Promise<void> {
    if (this.#worker) await this.#worker.terminate();
    else if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGKILL');
      await this.exited;
    }
  }

  #deliver(m: RankMessage): void {
    const w = this.#waiting.shift();
    if (w) w.resolve(m);
    else this.#queue.push(m);
  }

  #end(e: Error): void {
    if (this.#ended) return;
    this.#ended = e;
    for (const w of this.#waiting.splice(0)) w.reject(e);
  }
}

export function startRanks(placement: Placement, jobs: RankJob[]): RankRunner[] {
  return jobs.map((job) => new RankRunner(placement, job));
}

/** Waits until every rank attached, then lets them all start at once; returns the 'attached' messages. */
export async function attachAll(runners: RankRunner[]): Promise<RankMessage[]> {
  const attached = await Promise.all(runners.map((r) => r.next('attached')));
  for (const r of runners) r.send({ kind: 'start' });
  return attached;
}

export async function stopAll(runners: RankRunner[]): Promise<void> {
  await Promise.all(runners.map((r) => r.kill()));
}

/** Entries of /dev/shm (sorted); [] where it does not exist. */
export function devShm(): string[] {
  try {
    return readdirSync('/dev/shm').sort();
  } catch {
    return [];
  }
}
