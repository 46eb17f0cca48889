// `troupe bench serve|throughput|decode`: the flags of the benchmarks that
// ship with the product. Only commander here; each action loads its
// implementation (bench-serve-command.ts, bench-engine-command.ts) when it runs.
import type { Command } from 'commander';

export interface BenchServeFlags {
  baseUrl?: string;
  host: string;
  port: string;
  endpoint: string;
  model?: string;
  tokenizer?: string;
  apiKey?: string;
  inputLen: string;
  outputLen: string;
  rangeRatio: string;
  numPrompts: string;
  requestRate: string;
  burstiness: string;
  maxConcurrency?: string;
  seed: string;
  ignoreEos?: boolean;
  promptFormat: string;
  json?: boolean;
  progress: boolean;
  record: boolean;
}

function defineBenchServe(bench: Command): void {
  bench
    .command('serve')
    .description('serving benchmark against any OpenAI-compatible server, like vLLM benchmark_serving (random dataset)')
    .option('--base-url <url>', 'server URL, e.g. http://127.0.0.1:8000 (default: http://HOST:PORT)')
    .option('--host <host>', 'server host', '127.0.0.1')
    .option('--port <port>', 'server port', '8000')
    .option('--endpoint <path>', 'completions endpoint', '/v1/completions')
    .option('--model <name>', 'model name to request (default: the first of GET /v1/models)')
    .option('--tokenizer <dir>', 'directory with tokenizer.json for building prompts (default: the Llama 3.1 tokenizer)')
    .option('--api-key <key>', 'sent as "Authorization: Bearer <key>" (default: $OPENAI_API_KEY if set)')
    .option('--input-len <n>', 'prompt tokens (random dataset)', '1024')
    .option('--output-len <n>', 'tokens to generate per request', '128')
    .option('--range-ratio <r>', 'lengths drawn uniformly in [len * (1 - r), len * (1 + r)]', '0')
    .option('--num-prompts <n>', 'requests to send', '100')
    .option('--request-rate <rate>', 'requests per second (Poisson arrivals); inf sends all at once', 'inf')
    .option('--burstiness <b>', 'gamma shape of the arrival gaps (1: Poisson)', '1')
    .option('--max-concurrency <n>', 'requests in flight at most')
    .option('--seed <n>', 'seed of the dataset and the arrivals', '0')
    .option('--ignore-eos', 'generate exactly --output-len tokens (sends ignore_eos)')
    .option('--prompt-format <format>', 'text (prompts as text) or tokens (token-id prompts, exact lengths)', 'text')
    .option('--json', 'print the results as JSON instead of a table')
    .option('--no-progress', 'no progress bar')
    .option('--no-record', 'do not write a record under bench/results/')
    .action(async (flags: BenchServeFlags) => {
      const { runBenchServe } = await import('./bench-serve-command.js');
      process.exit(await runBenchServe(flags));
    });
}

/** Flags every offline engine benchmark takes. */
function engineFlags(command: Command): Command {
  return command
    .requiredOption('--model <dir>', 'model directory (HF layout)')
    .option('--dtype <dtype>', 'auto, bfloat16 or float32')
    .option('--max-model-len <n>', 'context length')
    .option('--max-num-seqs <n>', 'requests running at once')
    .option('--max-num-batched-tokens <n>', 'token budget of one step')
    .option('--kv-cache-memory <size>', 'KV cache budget, e.g. 2GiB')
    .option('--threads <n>', 'compute threads');
}

export function defineBenchCommand(program: Command): void {
  const bench = program.command('bench').description('benchmarks (figures printed and written to bench/results/)');
  defineBenchServe(bench);
  engineFlags(bench.command('throughput').description('offline throughput on unique random prompts, like vLLM benchmark_throughput'))
    .option('--input-len <n>', 'prompt tokens', '1024')
    .option('--output-len <n>', 'generated tokens', '128')
    .option('--num-prompts <n>', 'prompts', '16')
    .action(async (flags) => {
      const { runThroughput } = await import('./bench-engine-command.js');
      await runThroughput(flags);
      process.exit(0);
    });
  engineFlags(bench.command('decode').description('aggregate decode tokens/s at fixed concurrencies'))
    .option('--concurrency <list>', 'comma-separated concurrencies', '1,8,32')
    .option('--output-len <n>', 'generated tokens per sequence', '32')
    .action(async (flags) => {
      const { runDecodeSweep } = await import('./bench-engine-command.js');
      await runDecodeSweep(flags);
      process.exit(0);
    });
}
