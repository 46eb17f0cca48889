// `troupe eval`'s harness against a real gateway over the tiny model: each
// task's score equals the one computed directly from the engine's own prompt
// log-probabilities and greedy generations for the same texts (tokens, not
// character offsets); and the command prints a table and writes JSON.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runEvalCommand } from '../../cli/eval-command.js';
import { runEval } from '../../bench/eval/run.js';
import { argmax, definitionContext, definitionContinuation, firstWord, loadTasks, meanStderr, utf8Bytes, type TaskData } from '../../bench/eval/tasks.js';
import { tempDir } from '../models/helpers.js';
import { startGateway, TEST_MODEL_NAME, type TestGateway } from '../gateway/helpers.js';

let gateway: TestGateway;
test.before(async () => {
  gateway = await startGateway();
});
test.after.always(async () => {
  await gateway?.close();
});

/** A few items of each built-in task. */
function smallTasks(): TaskData {
  const all = loadTasks();
  return { perplexity: all.perplexity.slice(0, 3).map((d) => d.slice(0, 400)), definitions: all.definitions.slice(0, 6), cloze: all.cloze.slice(0, 6) };
}

/** log P(continuation | context) from the engine: its prompt logprobs of the tokens past the context's. */
async function direct(context: string, continuation: string): Promise<{ logprob: number; tokens: number }> {
  const contextIds = context === '' ? [] : await gateway.troupe.tokenize(context);
  const [result] = await gateway.troupe.generate([context + continuation], { maxTokens: 1, temperature: 0, promptLogprobs: 0 });
  const ids = result!.promptTokenIds;
  if (!contextIds.every((id, i) => ids[i] === id)) throw new Error(`the context's tokens are not a prefix: ${JSON.stringify(context)}`);
  let logprob = 0, tokens = 0;
  result!.promptLogprobs!.forEach((entry, i) => {
    if (i < contextIds.length || entry === null) return;
    logprob += entry.logprob;
    tokens++;
  });
  return { logprob, tokens };
}

test('scores through the API equal the engine\'s own log-probabilities and generations', async (t) => {
  const data = smallTasks();
  const results = await runEval({ baseUrl: `${gateway.url}/v1`, model: TEST_MODEL_NAME }, data, { tasks: ['perplexity', 'definitions', 'cloze'], progress: false, concurrency: 4 });
  const by = Object.fromEntries(results.map((r) => [r.task, r]));

  let lp = 0, tokens = 0, bytes = 0;
  for (const doc of data.perplexity) {
    const d = await direct('', doc);
    lp += d.logprob;
    tokens += d.tokens;
    bytes += utf8Bytes(doc);
  }
  t.true(Math.abs(by['perplexity']!.metrics['token_perplexity']!.value - Math.exp(-lp / tokens)) <= 1e-9 * Math.exp(-lp / tokens));
  t.true(Math.abs(by['perplexity']!.metrics['byte_perplexity']!.value - Math.exp(-lp / bytes)) <= 1e-9 * Math.exp(-lp / bytes));

  const acc: number[] = [];
  for (const item of data.definitions) {
    const scores = [];
    for (const c of item.choices) scores.push((await direct(definitionContext(item.word), definitionContinuation(c))).logprob);
    acc.push(argmax(scores) === item.answer ? 1 : 0);
  }
  t.deepEqual(by['definitions']!.metrics['acc'], meanStderr(acc));

  const match: number[] = [];
  for (const item of data.cloze) {
    const [result] = await gateway.troupe.generate([item.prompt], { maxTokens: 4, temperature: 0 });
    match.push(firstWord(result!.outputs[0]!.text) === item.answer ? 1 : 0);
  }
  t.deepEqual(by['cloze']!.metrics['exact_match'], meanStderr(match));
  t.is(by['definitions']!.samples, 6);
});

test('`troupe eval` names the served model, prints a table and writes the results as JSON', async (t) => {
  const dir = tempDir('eval-out');
  const tasksFile = join(dir, 'tasks.json');
  writeFileSync(tasksFile, JSON.stringify(smallTasks()));
  const output = join(dir, 'results.json');
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => void lines.push(args.join(' '));
  try {
    await runEvalCommand({ baseUrl: `${gateway.url}/v1`, tasks: 'definitions,cloze', tasksFile, limit: '2', concurrency: '2', output, progress: false });
  } finally {
    console.log = log;
  }
  const report = JSON.parse(readFileSync(output, 'utf8')) as { model: string; results: { task: string; samples: number }[] };
  t.is(report.model, TEST_MODEL_NAME);
  t.deepEqual(report.results.map((r) => [r.task, r.samples]), [['definitions', 2], ['cloze', 2]]);
  t.regex(lines.join('\n'), /\| definitions \| 2 +\| acc/);
});
