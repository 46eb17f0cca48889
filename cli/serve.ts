// `troupe serve`: its flags (vLLM's names where the concept is the same).
// Only commander here, so `troupe --help` stays fast; the action loads
// serve-command.ts when it runs.
import type { Command } from 'commander';
import { defineVllmCompatFlags } from './vllm-flags.js';

export interface ServeFlags {
  topology?: string;
  revision?: string;
  host?: string;
  port?: string;
  servedModelName?: string[];
  apiKey?: string[];
  dtype?: string;
  quantization?: string;
  kvCacheDtype?: string;
  maxModelLen?: string;
  maxNumSeqs?: string;
  maxNumBatchedTokens?: string;
  blockSize?: string;
  kvCacheMemory?: string;
  enablePrefixCaching?: boolean;
  schedulingPolicy?: string;
  cpuOffloadGb?: string;
  chatTemplate?: string;
  generationConfig?: string;
  tensorParallelSize?: string;
  pipelineParallelSize?: string;
  enableChunkedPrefill?: boolean;
  threads?: string;
  rankPlacement?: string;
  joinToken?: string;
  joinTokenFile?: string;
  nodeRejoinTimeout?: string;
  seed?: string;
  maxRequestBytes?: string;
  maxPendingRequests?: string;
  shutdownTimeout?: string;
  allowedOrigins?: string;
  allowedMethods?: string;
  allowedHeaders?: string;
  allowCredentials?: boolean;
  enableRequestIdHeaders?: boolean;
  logLevel?: string;
  logFormat?: string;
  enableLogRequests?: boolean;
  disableLogStats?: boolean;
  logStatsInterval?: string;
  enableAutoToolChoice?: boolean;
  toolCallParser?: string;
}

/** A repeatable option: each occurrence adds a value (a variadic one would swallow the model directory after it). */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function defineServeCommand(program: Command): void {
  const serve = program
    .command('serve [model]')
    .description('serve a model (an HF directory, or a hub id such as meta-llama/Llama-3.2-1B-Instruct) behind an OpenAI-compatible API; with no model, the embedded troupe-demo-36m')
    .option('--revision <rev>', 'hub revision (branch, tag or commit) of a model given by hub id (default main); HF_TOKEN, HF_HOME, HF_HUB_OFFLINE and HF_ENDPOINT apply')
    .option('--topology <file>', 'topology file (tensor/pipeline layout, placement, memory, serve settings); flags override it')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default 8000; 0: any free port)')
    .option('--served-model-name <names...>', 'model name(s) in the API (default: the model directory as given)')
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" on /v1/*; repeat for several keys (default: $TROUPE_API_KEY if set)', collect)
    .option('--dtype <dtype>', 'auto, bfloat16 or float32')
    .option('--quantization <method>', 'fp8: quantize a bf16 checkpoint\'s linears to FP8 at load (FP8 checkpoints need no flag)')
    .option('--kv-cache-dtype <dtype>', 'auto, fp8 (= fp8_e4m3, scaled by the checkpoint\'s k/v scales) or fp8_e5m2: one byte per element')
    .option('--max-model-len <n>', 'context length (default: the model\'s, capped to what the KV cache holds)')
    .option('--max-num-seqs <n>', 'sequences running at once (default 64)')
    .option('--max-num-batched-tokens <n>', 'token budget of one engine step; prefills are chunked to it (default 256)')
    .option('--block-size <n>', 'tokens per KV-cache block (default 32)')
    .option('--kv-cache-memory <size>', 'KV-cache budget, e.g. 2GiB')
    .option('--enable-prefix-caching', 'reuse KV blocks of shared prompt prefixes (default on)')
    .option('--no-enable-prefix-caching', 'turn prefix caching off')
    .option('--scheduling-policy <policy>', 'fcfs or priority')
    .option('--cpu-offload-gb <n>', 'GiB of weights to keep in CPU memory (CPU engine: must be 0)')
    .option('--chat-template <template>', 'chat template: a file or the template text (default: tokenizer_config.json\'s)')
    .option('--generation-config <mode>', 'auto: sampling defaults from generation_config.json (as vLLM); vllm: ignore it', 'auto')
    .option('--tensor-parallel-size <n>', 'tensor-parallel ranks')
    .option('--pipeline-parallel-size <n>', 'pipeline stages')
    .option('--enable-chunked-prefill', 'accepted for vLLM compatibility: prefills are always chunked to the step budget')
    .option('--threads <n>', 'compute threads (default: the cores this process may use)')
    .option('--rank-placement <placement>', 'where the ranks run: local (this thread; one rank only), thread or process')
    .option('--join-token <secret>', 'token nodes join with when the topology places stages on nodes (visible in ps; prefer --join-token-file or $TROUPE_JOIN_TOKEN)')
    .option('--join-token-file <file>', 'file whose first line is the join token (at least 128 bits: `openssl rand -hex 32`)')
    .option('--node-rejoin-timeout <seconds>', 'how long a lost node is waited for before its requests end with 503 (default 60)')
    .option('--seed <n>', 'seed for requests that bring none (reproducible runs)')
    .option('--max-request-bytes <size>', 'largest request body accepted, e.g. 16MiB (413 above)', '16MiB')
    .option('--max-pending-requests <n>', 'sequences that may wait beyond --max-num-seqs; more get 429', '256')
    .option('--enable-auto-tool-choice', 'let the model call tools on its own (tool_choice "auto"); needs --tool-call-parser')
    .option('--tool-call-parser <parser>', 'how tool calls are read from the model\'s reply: llama3_json (Llama 3.x\'s JSON format)')
    .option('--shutdown-timeout <seconds>', 'on SIGTERM, how long requests in flight may finish before they are aborted', '30')
    .option('--allowed-origins <list>', 'CORS: origins allowed, a JSON list or comma-separated (default ["*"], as vLLM)')
    .option('--allowed-methods <list>', 'CORS: methods allowed (default ["*"])')
    .option('--allowed-headers <list>', 'CORS: request headers allowed (default ["*"])')
    .option('--allow-credentials', 'CORS: allow credentials (the origin is echoed instead of "*")')
    .option('--enable-request-id-headers', 'take X-Request-Id from each request (or make one up) and send it back')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
    .option('--log-format <format>', 'text or json (one JSON object per line)', 'text')
    .option('--enable-log-requests', 'one log line per request: id, route, tokens, TTFT, total time, finish reason')
    .option('--disable-log-stats', 'no periodic engine stats (throughput, running / waiting requests, KV cache usage)')
    .option('--log-stats-interval <seconds>', 'seconds between engine stats lines', '10');
  defineVllmCompatFlags(serve);
  serve
    .action(async (model: string | undefined, flags: ServeFlags) => {
      let runServe: typeof import('./serve-command.js').runServe;
      try {
        ({ runServe } = await import('./serve-command.js'));
      } catch (error) {
        // uWebSockets.js could not load here (gateway/uws.ts says why): a sentence, not a stack trace
        if ((error as Error)?.name !== 'UwsLoadError') throw error;
        console.error(`troupe serve: ${(error as Error).message}`);
        process.exit(1);
      }
      const code = await runServe(model, flags);
      if (code !== null) process.exit(code);
    });
}
