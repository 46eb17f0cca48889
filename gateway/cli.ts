#!/usr/bin/env node
// The `troupe` command line. Each subcommand lives with the folder that owns it;
// this file only wires them into one program.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { defineBenchServeCommand, defineServeCommand } from './serve-flags.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('troupe')
  .description('Troupe: an LLM serving engine for Llama 3.x on an actor runtime')
  .version(pkg.version);

program
  .command('info')
  .description('print the CPU features the native addon may use (detected, capped by TROUPE_CPU_FEATURES) and the kernel path it selected')
  .action(async () => {
    const { loadNative } = await import('../native/index.js');
    const native = loadNative();
    const cap = native.cpuFeatureCap();
    console.log(JSON.stringify({ cpu: native.cpuFeatures(), isa: native.selectedIsa(), available: native.availableIsas(), ...(cap ? { cap, detected: native.detectedCpuFeatures() } : {}) }, null, 2));
  });

program
  .command('node')
  .description('join a leader as a node agent and host the actors it places here')
  .requiredOption('--join <host:port>', "the leader's node listener")
  .option('--join-token-file <file>', 'file whose first line is the join token (default: $TROUPE_JOIN_TOKEN)')
  .option('--token <secret>', 'the join token on the command line (visible in ps; prefer --join-token-file)')
  .option('--name <name>', 'this node\'s name in topology files (default: hostname-pid)')
  .option('--rejoin-for <seconds>', 'keep trying to (re)join an unreachable leader this long', '60')
  .action(async (options: { join: string; token?: string; joinTokenFile?: string; name?: string; rejoinFor?: string }) => {
    const { runNodeAgent } = await import('./node-command.js');
    process.exit(await runNodeAgent(options));
  });

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
  .action(async (options) => {
    const { runEvalCommand } = await import('./eval-command.js');
    try {
      await runEvalCommand(options);
    } catch (err) {
      console.error(`troupe eval: ${(err as Error).message}`);
      process.exit(2);
    }
  });

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

defineServeCommand(program);

const bench = program.command('bench').description('benchmarks (figures printed and written to bench/results/)');
defineBenchServeCommand(bench);
const engineFlags = (command: Command) => command
  .requiredOption('--model <dir>', 'model directory (HF layout)')
  .option('--dtype <dtype>', 'auto, bfloat16 or float32')
  .option('--max-model-len <n>', 'context length')
  .option('--max-num-seqs <n>', 'requests running at once')
  .option('--max-num-batched-tokens <n>', 'token budget of one step')
  .option('--kv-cache-memory <size>', 'KV cache budget, e.g. 2GiB')
  .option('--threads <n>', 'compute threads');
engineFlags(bench.command('throughput').description('offline throughput on unique random prompts, like vLLM benchmark_throughput'))
  .option('--input-len <n>', 'prompt tokens', '1024')
  .option('--output-len <n>', 'generated tokens', '128')
  .option('--num-prompts <n>', 'prompts', '16')
  .action(async (flags) => {
    const { runThroughput } = await import('./bench-command.js');
    await runThroughput(flags);
    process.exit(0);
  });
engineFlags(bench.command('decode').description('aggregate decode tokens/s at fixed concurrencies'))
  .option('--concurrency <list>', 'comma-separated concurrencies', '1,8,32')
  .option('--output-len <n>', 'generated tokens per sequence', '32')
  .action(async (flags) => {
    const { runDecodeSweep } = await import('./bench-command.js');
    await runDecodeSweep(flags);
    process.exit(0);
  });

await program.parseAsync(process.argv);
