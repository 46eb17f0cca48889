// `troupe topology check`: the plan a topology file makes, or why it cannot run (topology/check-command.ts).
import type { Command } from 'commander';

export function defineTopologyCommand(program: Command): void {
  program
    .command('topology')
    .description('topology files')
    .command('check <file>')
    .description('print the plan a topology file makes (layers per stage, shards, memory, threads) or why it cannot run')
    .option('--model <dir>', 'check shards and memory against this model')
    .action(async (file: string, options: { model?: string }) => {
      const { runTopologyCheck } = await import('../topology/check-command.js');
      process.exit(runTopologyCheck(file, options));
    });
}
