// `troupe eval`: the evaluator's flags; eval-command.ts runs it.
import type { Command } from 'commander';
import type { EvalFlags } from './eval-command.js';

export function defineEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('score a model on an OpenAI-compatible server: perplexity, multiple choice, cloze (lm-eval-harness style)')
    .option('--base-url <url>', 'the server\'s OpenAI API root', 'http://127.0.0.1:8000/v1')
    .option('--model <name>', 'model name to request (default: the first of /v1/models)')
    .option('--tasks <list>', 'comma-separated: perplexity, definitions, cloze', 'perplexity,definitions,cloze')
    .option('--tasks-file <file>', 'task data (default: the demo model\'s held-out split, models/demo/heldout.json)')
    .option('--limit <n>', 'at most n items per task')
    .option('--concurrency <n>', 'requests in flight', '8')
    .option('--api-key <key>', 'bearer token (default $OPENAI_API_KEY)')
    .option('--output <file>', 'write the results as JSON')
    .option('--no-progress', 'no progress bar')
    .action(async (options: EvalFlags) => {
      const { runEvalCommand } = await import('./eval-command.js');
      try {
        await runEvalCommand(options);
      } catch (err) {
        console.error(`troupe eval: ${(err as Error).message}`);
        process.exit(2);
      }
    });
}
