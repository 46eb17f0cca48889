// `troupe quantize --fp8`: an FBGEMM-format FP8 checkpoint from a bf16 one (models/quantization/quantize.ts).
import type { Command } from 'commander';

export function defineQuantizeCommand(program: Command): void {
  program
    .command('quantize')
    .description('write an FP8 checkpoint (FBGEMM format, like Meta\'s) from a bf16 one')
    .requiredOption('--fp8', 'quantize weights to FP8 e4m3 with per-channel scales')
    .argument('<in>', 'bf16 / fp16 / fp32 model directory')
    .argument('<out>', 'output directory')
    .option('--scheme <scheme>', 'meta: MLPs of the middle layers (Meta 405B FP8); all: every linear and the lm head', 'meta')
    .action(async (inDir: string, outDir: string, options: { scheme: string }) => {
      const { quantizeCheckpoint } = await import('../models/quantization/quantize.js');
      try {
        const result = quantizeCheckpoint(inDir, outDir, options.scheme as 'meta' | 'all');
        console.log(`wrote ${outDir}: ${result.quantizedTensors} tensors in FP8, ${result.keptTensors} kept, ${(result.bytesWritten / 2 ** 20).toFixed(1)} MiB`);
      } catch (error) {
        console.error(`troupe quantize: ${(error as Error).message}`);
        process.exit(1);
      }
    });
}
