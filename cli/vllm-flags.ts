// vLLM flags that launch scripts pass and that mean nothing on this engine,
// or mean something it cannot do. `troupe serve` accepts the first kind with
// one warning each, naming what Troupe does instead, and refuses the second
// kind with a message (exit 2): serving without TLS when TLS was asked for,
// or with another tokenizer, adapter or weight format than asked, would
// answer wrongly instead of failing.
//
// Flags whose concept Troupe has (--max-num-batched-tokens, --block-size,
// --served-model-name, --seed, --dtype, --enable-log-requests, ...) are real
// flags in serve.ts, not here. Only commander is imported, so that
// `troupe --help` stays fast.
import type { Command } from 'commander';

/** What a vLLM flag's value earns: a warning, a refusal, or nothing to say. */
type FlagVerdict = { warn: string } | { refuse: string } | null;

interface CompatFlag {
  /** As vLLM spells it, with `<value>` when it takes one. */
  flag: string;
  /** What happens (in --help). */
  help: string;
  /** `value` is true for a flag without a value. */
  check(value: string | true, model: string | undefined): FlagVerdict;
}

const warn = (text: string) => (): FlagVerdict => ({ warn: text });

const NO_CUDA_GRAPHS = 'Troupe runs on CPU cores without CUDA graphs: every step runs eagerly';

export const VLLM_COMPAT_FLAGS: CompatFlag[] = [
  { flag: '--gpu-memory-utilization <fraction>', help: 'ignored: the KV cache is sized by --kv-cache-memory',
    check: warn('Troupe sizes the KV cache from --kv-cache-memory (or the topology\'s memory.kv_cache), not from a fraction of GPU memory') },
  { flag: '--swap-space <GiB>', help: 'ignored: preempted requests are recomputed',
    check: warn('Troupe never swaps KV blocks to CPU memory: a preempted request is recomputed from its tokens') },
  { flag: '--disable-log-requests', help: 'accepted: request logging is off unless --enable-log-requests',
    check: warn('request logging is already off by default; --enable-log-requests turns it on') },
  { flag: '--uvicorn-log-level <level>', help: 'ignored: use --log-level',
    check: warn('Troupe has no uvicorn: --log-level sets the level of every log line') },
  { flag: '--disable-uvicorn-access-log', help: 'ignored: there is no access log; see --enable-log-requests',
    check: warn('Troupe has no uvicorn access log: --enable-log-requests writes one line per request') },
  { flag: '--trust-remote-code', help: 'ignored: no code from the model directory is run',
    check: warn('Troupe runs its own Llama implementation: no code from the model directory is ever executed') },
  { flag: '--enforce-eager', help: 'ignored: there are no CUDA graphs', check: warn(NO_CUDA_GRAPHS) },
  { flag: '--max-seq-len-to-capture <n>', help: 'ignored: there are no CUDA graphs', check: warn(NO_CUDA_GRAPHS) },
  { flag: '--disable-custom-all-reduce', help: 'ignored: tensor groups reduce through shared memory',
    check: warn('Troupe\'s tensor groups all-reduce through shared memory in a fixed order; there is no custom all-reduce to turn off') },
  { flag: '--distributed-executor-backend <backend>', help: 'ignored: ranks are placed by --rank-placement or the topology',
    check: warn('Troupe places its ranks by --rank-placement (thread or process) or the topology file, on its own actor runtime') },
  { flag: '--disable-frontend-multiprocessing', help: 'ignored: the gateway and the engine front share a process',
    check: warn('Troupe\'s gateway and engine front share one process; ranks are placed by --rank-placement') },
  { flag: '--num-scheduler-steps <n>', help: 'ignored: one scheduling decision per step',
    check: warn('Troupe\'s scheduler plans every step on its own') },
  { flag: '--use-v2-block-manager', help: 'ignored: there is one block manager',
    check: warn('Troupe has one KV block pool, with prefix caching (see --enable-prefix-caching)') },
  { flag: '--disable-fastapi-docs', help: 'ignored: there are no docs routes',
    check: warn('Troupe serves no /docs or /openapi.json routes') },
  { flag: '--root-path <path>', help: 'ignored: routes are served where they are',
    check: warn('Troupe serves its routes at /v1/... whatever proxy path is in front') },
  { flag: '--max-log-len <n>', help: 'ignored: request log lines hold no prompt text',
    check: warn('Troupe\'s request log lines (--enable-log-requests) never hold prompt or output text') },
  { flag: '--enable-prompt-tokens-details', help: 'accepted: usage.prompt_tokens_details is always sent',
    check: warn('usage.prompt_tokens_details.cached_tokens is always reported') },
  { flag: '--max-logprobs <n>', help: 'ignored: logprobs are capped by the sampler',
    check: warn('the number of logprobs a request may ask for is fixed by Troupe\'s sampler (20, as OpenAI)') },
  { flag: '--speculative-config <json>', help: 'ignored: no speculative decoding',
    check: warn('Troupe has no speculative decoding: tokens are sampled one per step (outputs are the same, only slower)') },
  { flag: '--tokenizer-mode <mode>', help: 'auto, hf, slow: the model\'s tokenizer.json; others refused',
    check: (value) => (value === 'auto' || value === 'hf' || value === 'slow'
      ? { warn: 'Troupe always encodes with the model directory\'s tokenizer.json' }
      : { refuse: `--tokenizer-mode ${String(value)} is not supported: Troupe encodes with the model directory's tokenizer.json (auto, hf, slow)` }) },
  { flag: '--load-format <format>', help: 'auto, safetensors; others refused',
    check: (value) => (value === 'auto' || value === 'safetensors'
      ? { warn: 'Troupe reads the model\'s *.safetensors files' }
      : { refuse: `--load-format ${String(value)} is not supported: Troupe loads *.safetensors checkpoints only (auto, safetensors)` }) },
  { flag: '--device <device>', help: 'auto, cpu; others refused',
    check: (value) => (value === 'auto' || value === 'cpu'
      ? { warn: 'Troupe runs on the CPU cores it is given (see --threads)' }
      : { refuse: `--device ${String(value)} is not supported: Troupe runs on CPU cores (auto, cpu)` }) },
  { flag: '--data-parallel-size <n>', help: '1 only: run one server per replica',
    check: (value) => (value === '1' ? { warn: 'Troupe runs one engine per server: --data-parallel-size 1 changes nothing' }
      : { refuse: `--data-parallel-size ${String(value)} is not supported: run one troupe serve per replica behind a load balancer` }) },
  { flag: '--tokenizer <dir>', help: 'the model directory only',
    check: (value, model) => (value === model ? { warn: 'Troupe encodes with the model directory\'s tokenizer; --tokenizer naming it changes nothing' }
      : { refuse: `--tokenizer ${String(value)} is not supported: Troupe encodes with the tokenizer.json of the model directory${model ? ` (${model})` : ''}; a different tokenizer would give different tokens` }) },
  { flag: '--ssl-keyfile <file>', help: 'refused: put a TLS proxy in front', check: refuseTls('--ssl-keyfile') },
  { flag: '--ssl-certfile <file>', help: 'refused: put a TLS proxy in front', check: refuseTls('--ssl-certfile') },
  { flag: '--enable-lora', help: 'refused: no LoRA adapters',
    check: () => ({ refuse: '--enable-lora is not supported: Troupe serves the base weights only' }) },
  { flag: '--lora-modules <modules...>', help: 'refused: no LoRA adapters',
    check: () => ({ refuse: '--lora-modules is not supported: Troupe serves the base weights only, and requests naming an adapter would get them' }) },
  { flag: '--rope-scaling <json>', help: 'refused: RoPE comes from config.json',
    check: () => ({ refuse: '--rope-scaling is not supported: Troupe takes RoPE scaling from the model\'s config.json' }) },
  { flag: '--hf-overrides <json>', help: 'refused: the model is read from config.json as it is',
    check: () => ({ refuse: '--hf-overrides is not supported: Troupe reads config.json as it is; edit a copy of the model directory instead' }) },
];

function refuseTls(flag: string) {
  return (): FlagVerdict => ({ refuse: `${flag} is not supported: Troupe serves plain HTTP; terminate TLS in a proxy in front of it (serving without TLS when it was asked for would be unsafe)` });
}

/** commander's camelCase key of a flag ('--gpu-memory-utilization <f>' -> 'gpuMemoryUtilization'). */
function optionKey(flag: string): string {
  return flag.split(' ')[0]!.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function defineVllmCompatFlags(command: Command): void {
  for (const { flag, help } of VLLM_COMPAT_FLAGS) command.option(flag, `vLLM's; ${help}`);
}

export interface VllmFlagNotices {
  warnings: string[];
  refusals: string[];
}

/** The warnings and refusals the given vLLM flags earn (`flags`: commander's parsed options). */
export function vllmFlagNotices(flags: Record<string, unknown>, model: string | undefined): VllmFlagNotices {
  const notices: VllmFlagNotices = { warnings: [], refusals: [] };
  for (const compat of VLLM_COMPAT_FLAGS) {
    const value = flags[optionKey(compat.flag)];
    if (value === undefined || value === false) continue;
    const given = Array.isArray(value) ? value.join(' ') : value === true ? true : String(value);
    const verdict = compat.check(given, model);
    const name = compat.flag.split(' ')[0]!;
    if (verdict && 'warn' in verdict) notices.warnings.push(`${name} is accepted for vLLM compatibility and ignored: ${verdict.warn}`);
    else if (verdict) notices.refusals.push(verdict.refuse);
  }
  return notices;
}
