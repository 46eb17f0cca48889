// Progress bars while `troupe serve` starts (on a terminal only; piped or
// logged output gets the plain startup lines alone):
//
//   weights  [=========-----------] 1.2/2.5 GB   reading the checkpoint files once, through the
//                                               page cache the engine's loader then reads from
//   engine   [====================] 1/1 | 3.1s  tokenizer pool, rank (weights into memory), KV cache
import { createReadStream, statSync } from 'node:fs';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';

export class LoadingProgress {
  private readonly bars: MultiBar | null;

  constructor(enabled = Boolean(process.stderr.isTTY)) {
    this.bars = enabled
      ? new MultiBar({ format: '{label} {bar} {value}/{total} {unit} | {duration}s', hideCursor: true, clearOnComplete: false, stopOnComplete: false }, Presets.shades_classic)
      : null;
  }

  /** Reads every weight file once, with a bar in MB. */
  async readWeights(files: string[]): Promise<void> {
    const total = files.reduce((sum, f) => sum + statSync(f).size, 0);
    const bar = this.bar('weights', Math.ceil(total / 1e6), 'MB');
    let read = 0;
    for (const file of files) {
      for await (const chunk of createReadStream(file, { highWaterMark: 8 << 20 })) {
        read += (chunk as Buffer).length;
        bar?.update(Math.floor(read / 1e6));
      }
    }
    bar?.update(Math.ceil(total / 1e6));
  }

  /** Runs `work` under a one-step bar named `label`. */
  async step<T>(label: string, work: () => Promise<T>): Promise<T> {
    const bar = this.bar(label, 1, '');
    const result = await work();
    bar?.update(1);
    return result;
  }

  stop(): void {
    this.bars?.stop();
  }

  private bar(label: string, total: number, unit: string): SingleBar | null {
    return this.bars?.create(total, 0, { label: label.padEnd(8), unit }) ?? null;
  }
}
