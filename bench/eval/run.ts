// Runs evaluation tasks against an OpenAI-compatible endpoint: every request
// of every chosen task, `concurrency` at a time, one progress bar over all of
// them; scores are a pure function of the server's answers (request order
// does not matter).
import { Presets, SingleBar } from 'cli-progress';
import { generate, logLikelihood, type CompletionsEndpoint } from './openai-completions.js';
import { argmax, definitionContext, definitionContinuation, firstWord, meanStderr, utf8Bytes, type TaskData, type TaskName } from './tasks.js';

interface Metric {
  value: number;
  stderr?: number;
}
export interface TaskResult {
  task: TaskName;
  samples: number;
  metrics: Record<string, Metric>;
}

export interface RunOptions {
  tasks: readonly TaskName[];
  /** At most this many items of each task (the first ones). */
  limit?: number;
  concurrency?: number;
  progress?: boolean;
  /** Greedy tokens generated for a cloze item. */
  clozeMaxTokens?: number;
}

async function pool<T>(jobs: (() => Promise<T>)[], concurrency: number, onDone: () => void): Promise<T[]> {
  const results = new Array<T>(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
      onDone();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  return results;
}

export async function runEval(endpoint: CompletionsEndpoint, data: TaskData, options: RunOptions): Promise<TaskResult[]> {
  const take = <T>(xs: T[]): T[] => (options.limit === undefined ? xs : xs.slice(0, options.limit));
  const perplexity = options.tasks.includes('perplexity') ? take(data.perplexity) : [];
  const definitions = options.tasks.includes('definitions') ? take(data.definitions) : [];
  const cloze = options.tasks.includes('cloze') ? take(data.cloze) : [];

  const docJobs = perplexity.map((doc) => () => logLikelihood(endpoint, '', doc));
  const choiceJobs = definitions.flatMap((item) => item.choices.map((c) => () => logLikelihood(endpoint, definitionContext(item.word), definitionContinuation(c))));
  const clozeJobs = cloze.map((item) => () => generate(endpoint, item.prompt, options.clozeMaxTokens ?? 4));
  const total = docJobs.length + choiceJobs.length + clozeJobs.length;
  const bar = options.progress === false ? null : new SingleBar({ format: 'eval {bar} {value}/{total} requests | {duration}s', etaBuffer: 50 }, Presets.shades_classic);
  bar?.start(total, 0);
  const concurrency = options.concurrency ?? 8;
  const tick = (): void => bar?.increment();
  let docs, choices, generations;
  try {
    docs = await pool(docJobs, concurrency, tick);
    choices = await pool<{ logprob: number; tokens: number }>(choiceJobs, concurrency, tick);
    generations = await pool(clozeJobs, concurrency, tick);
  } finally {
    bar?.stop();
  }

  const results: TaskResult[] = [];
  if (perplexity.length > 0) {
    const logprob = docs.reduce((a, d) => a + d.logprob, 0);
    const tokens = docs.reduce((a, d) => a + d.tokens, 0);
    const bytes = perplexity.reduce((a, d) => a + utf8Bytes(d), 0);
    results.push({
      task: 'perplexity',
      samples: perplexity.length,
      metrics: {
        token_perplexity: { value: Math.exp(-logprob / tokens) },
        byte_perplexity: { value: Math.exp(-logprob / bytes) },
        bits_per_byte: { value: -logprob / bytes / Math.LN2 },
      },
    });
  }
  if (definitions.length > 0) {
    const acc: number[] = [];
    const accNorm: number[] = [];
    let k = 0;
    for (const item of definitions) {
      const scored = item.choices.map((c) => ({ lp: choices[k++]!.logprob, bytes: utf8Bytes(definitionContinuation(c)) }));
      acc.push(argmax(scored.map((s) => s.lp)) === item.answer ? 1 : 0);
      accNorm.push(argmax(scored.map((s) => s.lp / s.bytes)) === item.answer ? 1 : 0);
    }
    results.push({ task: 'definitions', samples: definitions.length, metrics: { acc: meanStderr(acc), acc_norm: meanStderr(accNorm) } });
  }
  if (cloze.length > 0) {
    const match = cloze.map((item, i) => (firstWord(generations[i]!) === item.answer ? 1 : 0));
    results.push({ task: 'cloze', samples: cloze.length, metrics: { exact_match: meanStderr(match) } });
  }
  return results;
}

/** The results as a text table: task, metric, value ± stderr. */
export function formatTable(results: readonly TaskResult[]): string {
  const rows = [['task', 'samples', 'metric', 'value', '± stderr']];
  for (const r of results) {
    for (const [name, m] of Object.entries(r.metrics)) {
      rows.push([r.task, String(r.samples), name, m.value.toFixed(4), m.stderr === undefined || Number.isNaN(m.stderr) ? '' : m.stderr.toFixed(4)]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]): string => `| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}
