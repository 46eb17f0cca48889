// `troupe eval`: scores a model served by any OpenAI-compatible server on the
// evaluator's tasks (bench/eval/tasks.ts), prints a table and writes JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runEval, formatTable, type TaskResult } from '../bench/eval/run.js';
import { BUILTIN_TASKS_FILE, loadTasks, TASK_NAMES, type TaskName } from '../bench/eval/tasks.js';

export interface EvalFlags {
  baseUrl: string;
  model?: string;
  tasks: string;
  tasksFile?: string;
  limit?: string;
  concurrency: string;
  output?: string;
  apiKey?: string;
  progress: boolean;
}

export interface EvalReport {
  base_url: string;
  model: string;
  tasks_file: string;
  limit: number | null;
  results: TaskResult[];
}

/** The served model when --model is not given: the first of /v1/models. */
async function firstModel(baseUrl: string, apiKey: string | undefined): Promise<string> {
  const response = await fetch(`${baseUrl.replace(/\/+$/, '')}/models`, apiKey ? { headers: { authorization: `Bearer ${apiKey}` } } : {});
  if (!response.ok) throw new Error(`${baseUrl}/models answered ${response.status}`);
  const body = (await response.json()) as { data?: { id: string }[] };
  const id = body.data?.[0]?.id;
  if (!id) throw new Error(`${baseUrl}/models lists no model; pass --model`);
  return id;
}

export async function runEvalCommand(flags: EvalFlags): Promise<EvalReport> {
  const tasks = flags.tasks.split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const t of tasks) if (!(TASK_NAMES as readonly string[]).includes(t)) throw new Error(`unknown task "${t}" (expected ${TASK_NAMES.join(', ')})`);
  const limit = flags.limit === undefined ? undefined : Number(flags.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new Error(`--limit must be a positive integer, got "${flags.limit}"`);
  const concurrency = Number(flags.concurrency);
  if (!(Number.isInteger(concurrency) && concurrency > 0)) throw new Error(`--concurrency must be a positive integer, got "${flags.concurrency}"`);
  const apiKey = flags.apiKey ?? process.env['OPENAI_API_KEY'];
  const model = flags.model ?? (await firstModel(flags.baseUrl, apiKey));
  const tasksFile = resolve(flags.tasksFile ?? BUILTIN_TASKS_FILE);
  const results = await runEval({ baseUrl: flags.baseUrl, model, ...(apiKey ? { apiKey } : {}) }, loadTasks(tasksFile), {
    tasks: tasks as TaskName[],
    ...(limit !== undefined ? { limit } : {}),
    concurrency,
    progress: flags.progress,
  });
  const report: EvalReport = { base_url: flags.baseUrl, model, tasks_file: tasksFile, limit: limit ?? null, results };
  console.log(`${model} @ ${flags.baseUrl}`);
  console.log(formatTable(results));
  if (flags.output) {
    mkdirSync(dirname(resolve(flags.output)), { recursive: true });
    writeFileSync(flags.output, JSON.stringify(report, null, 2) + '\n');
    console.log(`wrote ${flags.output}`);
  }
  return report;
}
