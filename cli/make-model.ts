// `troupe make-model`: a random-weight Llama model in HF layout (models/generator.ts writes it).
import type { Command } from 'commander';

export function defineMakeModelCommand(program: Command): void {
  program
    .command('make-model')
    .description('write a random-weight Llama model in HF layout (tests, benchmarks; models/generator.ts)')
    .requiredOption('--preset <name>', 'tiny, tiny-long, llama-3.2-1b or llama-3.1-8b (models/presets.ts)')
    .requiredOption('--seed <n>', 'seed of the weights')
    .option('--dtype <dtype>', 'bf16, fp16 or fp32', 'bf16')
    .option('--layers <n>', 'fewer layers than the preset')
    .option('--max-shard-size <size>', 'shard above this size, as HF (default 5GB)')
    .requiredOption('--out <dir>', 'directory to write')
    .action(async (options: { preset: string; seed: string; dtype: string; layers?: string; out: string; maxShardSize?: string }) => {
      const { runMakeModel } = await import('../models/make-model.js');
      try {
        runMakeModel(options);
      } catch (err) {
        console.error(`troupe make-model: ${(err as Error).message}`);
        process.exit(2);
      }
    });
}
