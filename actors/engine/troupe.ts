// Troupe's offline and extension API: start the engine's supervision tree in
// this process, generate or stream, spawn extension actors into the tree.
//
//   const llm = await Troupe.start({ model: dir });
//   const [out] = await llm.generate('The capital of France is', { maxTokens: 8, temperature: 0 });
//   llm.stream({ messages: [{ role: 'user', content: 'Hi' }] }).subscribe((d) => process.stdout.write(d.text));
//   await llm.shutdown();
//
// The tree (DESIGN.md, Supervision tree):
//
//   troupe (one_for_one)
//   ├─ tokenizer            piscina pool behind an actor
//   ├─ front                request records; survives engine restarts
//   ├─ extensions           user actors (one_for_one), added at run time
//   └─ engine (rest_for_one)
//      ├─ ranks (one_for_all)
//      ├─ scheduler         owns the KV block pool; a restart recomputes every unfinished request
//      └─ detokenizer
//
// Paths come from the ids in engine-tree.ts. The API is a client of the
// front's protocol (front/protocol.ts) through its own actor outside the
// tree (troupe-client.ts), as any other client would be.
import { nanoid } from 'nanoid';
import { lastValueFrom, Observable, toArray } from 'rxjs';
import { Checkpoint } from '../../models/checkpoint.js';
import { resolveFp8Source } from '../../models/quantization/fp8-weights.js';
import { DEFAULT_BLOCK_SIZE, resolveDtype, resolveKvCacheDtype, validateCpuOffload, type ModelOptions } from '../../models/options.js';
import { Actor, ActorSystem, moduleActor, supervise, type ActorRef, type ActorSpec, type ChildSpec, type SupervisorMessage } from '../../runtime/index.js';
import { reviveTokenizerError } from '../tokenizer/errors.js';
import type { DecodeReply, TokenizeOptions, TokenizeReply, TokenizerInfo, TokenizerMessage } from '../tokenizer/messages.js';
import type { ChatMessage, PromptInput } from '../tokenizer/prompt.js';
import type { EngineState } from '../front/engine-availability.js';
import { EngineFront } from '../front/engine-front.js';
import { choiceIds, type ClientMessage, type FrontRequest, type SubmitReply, type SubmitRequest } from '../front/protocol.js';
import type { RequestDelta, TokenLogprob } from '../front/request-record.js';
import type { FrontMessage, RequestEvent } from '../messages/front.js';
import type { KvUsage } from '../messages/kv-cache.js';
import type { RankFaults } from '../rank/rank-actor.js';
import { NodeListener } from '../../runtime/node/listener.js';
import { planRanks, rankGroupSpec, topologyOf, type ParallelOptions, type RankGroupSpec } from './rank-group.js';
import { DEFAULT_KV_CACHE_MEMORY, planKvCache, type KvPlan } from '../kv-cache/kv-plan.js';
import type { FinishReason } from '../scheduler/request.js';
import { grammarEngineFor, type GrammarEngine, type GrammarEngineOptions } from '../grammar/grammar-engine.js';
import { MAX_N, type GenerationParams } from './request-params.js';
import { PATHS, rankId, TREE_IDS } from './engine-tree.js';
import { engineErrorOf, TroupeClient } from './troupe-client.js';
import { addTimings, emptyTimings, type StepTimingTotals } from './step-timings.js';
import type { SchedulerActorStats, SchedulerMessage } from '../messages/scheduler.js';
import { TopologyError } from '../../topology/errors.js';

/** Engine flags (vLLM's names, camelCased). */
export interface TroupeOptions {
  model: string;
  dtype?: string;
  /** --quantization fp8: quantize a bf16 checkpoint's linears to FP8 at load (models/options.ts). */
  quantization?: string;
  /** --kv-cache-dtype: auto, fp8 / fp8_e4m3, fp8_e5m2 (one byte per element: twice the tokens per budget). */
  kvCacheDtype?: string;
  /** Default: the model's max_position_embeddings, capped to what the KV cache holds (with a message). */
  maxModelLen?: number;
  maxNumSeqs?: number;
  /** Step token budget; every prefill is chunked to it. Default 256: a step of a 1B model stays around a second here. */
  maxNumBatchedTokens?: number;
  blockSize?: number;
  /** With units, e.g. '2GiB'. Default DEFAULT_KV_CACHE_MEMORY. */
  kvCacheMemory?: string | number;
  enablePrefixCaching?: boolean;
  schedulingPolicy?: 'fcfs' | 'priority';
  /** Compute threads of the rank (default: the cores this process may use). */
  threads?: number;
  cpuOffloadGb?: number;
  /** --chat-template: a file path or the template itself. */
  chatTemplate?: string;
  tokenizerThreads?: number;
  /** Where the rank runs: this thread (default; steps are native async work), a worker thread or a child process. */
  rankPlacement?: 'local' | 'thread' | 'process';
  /**
   * Tensor / pipeline parallelism (actors/engine/rank-group.ts): a topology, or
   * --tensor-parallel-size / --pipeline-parallel-size (ranks in threads, or
   * rankPlacement 'process'). Checked against the hardware and the model before any actor starts.
   */
  parallel?: ParallelOptions;
  /** Where nodes join when the topology places stages on nodes (`troupe node --join HOST:PORT --token T`). */
  nodeListener?: { token: string; host?: string; port?: number; heartbeatMs?: number; heartbeatTimeoutMs?: number; joinTimeoutMs?: number; onListening?: (address: { host: string; port: number }) => void };
  /** --node-rejoin-timeout: how long a rank placed on a lost node waits for it to rejoin (default 60 s). */
  nodeRejoinTimeoutMs?: number;
  /** How long requests wait for a stopped engine to come back before they end with a 503 (default: the rejoin timeout + 60 s). */
  engineRecoveryTimeoutMs?: number;
  /** Test hook: crash the rank at an engine step (see RankFaults). */
  faults?: RankFaults;
  /** Startup lines (KV cache size, capped lengths). Default console.log. */
  log?: (line: string) => void;
}

export type Prompt = string | number[] | { promptTokenIds: number[] } | { messages: ChatMessage[] };

export interface CompletionOutput {
  index: number;
  text: string;
  tokenIds: number[];
  finishReason: FinishReason;
  logprobs?: TokenLogprob[];
}

export interface GenerationResult {
  requestId: string;
  promptTokenIds: number[];
  outputs: CompletionOutput[];
  promptLogprobs?: RequestDelta['promptLogprobs'];
}

/**
 * How long the API waits on the engine's actors: generous, since under load
 * (a long prefill, a busy machine) their mailboxes legitimately queue.
 */
export const API_ASK_TIMEOUT_MS = 60_000;

export const DEFAULT_MAX_NUM_SEQS = 64;
export const DEFAULT_MAX_NUM_BATCHED_TOKENS = 256;

const ACTORS = {
  rank: new URL('../rank/rank-actor.js', import.meta.url).href,
  scheduler: new URL('../scheduler/scheduler-actor.js', import.meta.url).href,
  detokenizer: new URL('../detokenizer/actor.js', import.meta.url).href,
  tokenizer: new URL('../tokenizer/actor.js', import.meta.url).href,
};

export { PATHS };

/** What a submit gives back: the prompt as the engine took it, and one stream of deltas per choice. */
export interface Submitted {
  requestId: string;
  /** The choices' ids (protocol.ts choiceIds). */
  requestIds: string[];
  promptTokenIds: number[];
  promptText: string | null;
  maxTokens: number;
  /** Choice i's deltas; unsubscribing before its end aborts it. */
  streams: Observable<RequestDelta>[];
}

export interface SubmitOptions {
  /** How the prompt is tokenized (BOS, chat template options). */
  tokenize?: SubmitRequest['tokenize'];
  /** Max tokens when params has none (default 16; 'context': the rest of the context). */
  maxTokensDefault?: SubmitRequest['maxTokensDefault'];
}

export class Troupe {
  private constructor(
    readonly system: ActorSystem,
    readonly kvPlan: KvPlan,
    readonly maxModelLen: number,
    private readonly client: TroupeClient,
    private readonly clientRef: ActorRef<ClientMessage>,
    private readonly root: ActorRef<SupervisorMessage>,
    private readonly grammarOptions: GrammarEngineOptions & { modelDir: string },
    private readonly listener?: NodeListener,
  ) {}

  private get front(): ActorRef<FrontRequest> {
    return this.system.refFor<FrontRequest>(PATHS.front);
  }

  /**
   * The grammar engine of this process (xgrammar's tokenizer info, built on
   * first use; the front compiles submitted grammars with it): awaiting it
   * early keeps that cost off the first structured request.
   */
  grammars(): Promise<GrammarEngine> {
    return grammarEngineFor(this.grammarOptions.modelDir, this.grammarOptions);
  }

  static async start(options: TroupeOptions): Promise<Troupe> {
    const log = options.log ?? ((line: string) => console.log(line));
    validateCpuOffload(options.cpuOffloadGb);
    const checkpoint = Checkpoint.open(options.model);
    const config = checkpoint.config;
    const dtype = resolveDtype(options.dtype, config);
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    const kvCacheDtype = resolveKvCacheDtype(options.kvCacheDtype);
    const plan = planKvCache({
      config, dtype, kvCacheDtype, blockSize, memory: options.kvCacheMemory ?? DEFAULT_KV_CACHE_MEMORY,
      ...(options.maxModelLen !== undefined ? { maxModelLen: options.maxModelLen } : {}),
    });
    if (plan.capped) log(plan.capped);
    log(plan.summary);
    const maxModelLen = plan.maxModelLen;
    const modelOptions: ModelOptions = {
      dtype, blockSize, numBlocks: plan.numBlocks, maxModelLen, kvCacheDtype,
      ...(options.quantization !== undefined ? { quantization: options.quantization } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
    };
    const eosTokenIds = checkpoint.generationConfig.eosTokenIds.length ? checkpoint.generationConfig.eosTokenIds : config.eosTokenIds;
    // grammars are compiled against the logits' width; a complete one allows only eos
    const grammar = { modelDir: options.model, vocabSize: config.vocabSize, stopTokenIds: eosTokenIds };

    // Several ranks: the plan is checked (hardware, model) before anything starts.
    const parallel = { ...options.parallel, ...(options.rankPlacement === 'process' ? { placement: 'process' as const } : {}) };
    const topology = topologyOf(parallel, options.kvCacheMemory);
    // --quantization against the checkpoint, before any rank starts (FP8 shards like bf16: models/shard.ts).
    if (topology) resolveFp8Source(checkpoint, options.quantization);
    const group: RankGroupSpec | undefined = topology
      ? rankGroupSpec(planRanks(topology, options.model, dtype, typeof parallel.topology === 'string' ? parallel.topology : 'topology', {
        ...(options.quantization !== undefined ? { quantization: options.quantization } : {}), ...(options.kvCacheDtype !== undefined ? { kvCacheDtype: options.kvCacheDtype } : {}),
      }), config, {
        model: options.model, modelOptions, ...(options.faults ? { faults: options.faults } : {}),
        ...(parallel.collectiveTimeoutMs !== undefined ? { collectiveTimeoutMs: parallel.collectiveTimeoutMs } : {}),
      })
      : undefined;

    const nodeRejoinTimeoutMs = options.nodeRejoinTimeoutMs ?? 60_000;
    const system = new ActorSystem({ nodeRejoinTimeoutMs });
    let listener: NodeListener | undefined;
    if (group?.nodes.length) {
      if (!options.nodeListener) {
        throw new TopologyError('topology', [`stages are placed on nodes (${group.nodes.join(', ')}): give nodeListener (or troupe serve's leader.listen and a --token) so they can join`]);
      }
      const { onListening, joinTimeoutMs, ...listen } = options.nodeListener;
      listener = await NodeListener.listen(system, listen);
      onListening?.(listener.address);
      log(`waiting for node(s) ${group.nodes.join(', ')} to join ${listener.address.host}:${listener.address.port}`);
      try {
        await withTimeout(Promise.all(group.nodes.map((n) => listener!.waitForNode(n))), joinTimeoutMs ?? 120_000,
          `node(s) ${group.nodes.join(', ')} did not join within ${joinTimeoutMs ?? 120_000} ms; start each with troupe node --join ${listener.address.host}:${listener.address.port} --name NAME --token ...`);
      } catch (error) {
        await listener.close();
        await system.shutdown();
        throw error;
      }
    }
    const actor = (module: string, name: string, args: unknown[], extra: Partial<ActorSpec<unknown>> = {}): ActorSpec<unknown> =>
      moduleActor(module, name, args, extra);
    const children: ChildSpec[] = [
      { id: TREE_IDS.tokenizer, actor: actor(ACTORS.tokenizer, 'TokenizerActor', [{ modelDir: options.model, maxModelLen, vocabSize: config.vocabSize,
        ...(options.chatTemplate ? { chatTemplate: options.chatTemplate } : {}), ...(options.tokenizerThreads ? { threads: options.tokenizerThreads } : {}) }]) },
      { id: TREE_IDS.front, actor: { factory: () => new EngineFront({
        schedulerPath: PATHS.scheduler, detokenizerPath: PATHS.detokenizer, tokenizerPath: PATHS.tokenizer,
        vocabSize: config.vocabSize, maxModelLen, eosTokenIds, grammar,
        recoveryTimeoutMs: options.engineRecoveryTimeoutMs ?? nodeRejoinTimeoutMs + 60_000,
      }), mailbox: { capacity: 1 << 16 } } },
      { id: TREE_IDS.extensions, supervisor: { strategy: 'one_for_one', intensity: 5, periodMs: 60_000, children: [] } },
      {
        id: TREE_IDS.engine,
        supervisor: {
          strategy: 'rest_for_one', intensity: 5, periodMs: 60_000,
          children: [
            { id: TREE_IDS.ranks, supervisor: { strategy: 'one_for_all', intensity: 3, periodMs: 60_000, children: group?.children ?? [
              { id: rankId(0), actor: actor(ACTORS.rank, 'RankActor', [{ model: options.model, modelOptions, ...(options.faults ? { faults: options.faults } : {}) }],
                { placement: options.rankPlacement ?? 'local' }) },
            ] } },
            { id: TREE_IDS.scheduler, actor: actor(ACTORS.scheduler, 'SchedulerActor', [{
              frontPath: PATHS.front, rankPath: PATHS.rank0,
              grammar,
              ...(group ? { peerPaths: group.peerPaths, watchPaths: group.watchPaths, pipelineDepth: group.pipelineDepth } : {}),
              config: {
                maxNumBatchedTokens: options.maxNumBatchedTokens ?? DEFAULT_MAX_NUM_BATCHED_TOKENS,
                maxNumSeqs: options.maxNumSeqs ?? DEFAULT_MAX_NUM_SEQS,
                maxModelLen, blockSize, numBlocks: plan.numBlocks,
                policy: options.schedulingPolicy ?? 'fcfs',
                enablePrefixCaching: options.enablePrefixCaching ?? true,
              },
            }]) },
            { id: TREE_IDS.detokenizer, actor: actor(ACTORS.detokenizer, 'DetokenizerActor', [{ modelDir: options.model }], { mailbox: { capacity: 1 << 16 } }) },
          ],
        },
      },
    ];
    let root: ActorRef<SupervisorMessage>;
    const client = new TroupeClient();
    let clientRef: ActorRef<ClientMessage>;
    try {
      root = await supervise(system, PATHS.root, { strategy: 'one_for_one', intensity: 3, periodMs: 60_000, children });
      // the API's client of the front's protocol, outside the engine's tree
      clientRef = await system.spawn<ClientMessage>(`troupe-client-${nanoid(10)}`, { factory: () => client, mailbox: { capacity: 1 << 16 } });
      client.state = await system.refFor<FrontRequest>(PATHS.front).ask<EngineState>((replyTo) => ({ type: 'connect', client: clientRef, replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS });
    } catch (error) {
      await system.shutdown();
      await listener?.close();
      throw error;
    }
    return new Troupe(system, plan, maxModelLen, client, clientRef, root, grammar, listener);
  }

  /**
   * Submits a prompt through the front's protocol: validated and tokenized
   * once there, params.n choices admitted. Rejects with the EngineError as an
   * Error (EngineRequestError; EngineUnavailableError when the engine cannot
   * take requests).
   */
  async submit(prompt: Prompt, params: GenerationParams = {}, options: SubmitOptions = {}): Promise<Submitted> {
    const requestId = nanoid();
    const n = params.n ?? 1;
    const ids = Number.isInteger(n) && n >= 1 && n <= MAX_N ? choiceIds(requestId, n) : [];
    const streams = this.client.open(ids, (id) => this.abort(id));
    const reply = await this.front.ask<SubmitReply>((replyTo) => ({
      type: 'submit', requestId, prompt: toPromptInput(prompt), params, client: this.clientRef, replyTo,
      ...(options.tokenize ? { tokenize: options.tokenize } : {}),
      ...(options.maxTokensDefault !== undefined ? { maxTokensDefault: options.maxTokensDefault } : {}),
    }), { timeoutMs: API_ASK_TIMEOUT_MS }).catch((error: Error) => {
      this.client.close(ids);
      throw error;
    });
    if (!reply.ok) {
      this.client.close(ids);
      throw engineErrorOf(reply.error);
    }
    return { requestId, requestIds: reply.requestIds, promptTokenIds: reply.promptTokenIds, promptText: reply.promptText, maxTokens: reply.maxTokens, streams };
  }

  /** Generates for each prompt; resolves when every request finished. */
  async generate(prompts: Prompt | Prompt[], params: GenerationParams = {}): Promise<GenerationResult[]> {
    const list = Array.isArray(prompts) && (prompts.length === 0 || typeof prompts[0] !== 'number') ? (prompts as Prompt[]) : [prompts as Prompt];
    return Promise.all(list.map((prompt) => this.generateOne(prompt, params)));
  }

  /** Streams one completion's deltas (n must be 1); unsubscribing aborts the request. */
  stream(prompt: Prompt, params: GenerationParams = {}): Observable<RequestDelta> {
    if ((params.n ?? 1) !== 1) throw new RangeError('stream() streams one completion: use n = 1, or generate() for several');
    return new Observable<RequestDelta>((subscriber) => {
      let inner: { unsubscribe(): void } | undefined;
      let closed = false;
      this.submit(prompt, params).then((submitted) => {
        // unsubscribed while the prompt was being admitted: the request was submitted all the same, so end it
        if (closed) return this.abort(submitted.requestIds[0]!);
        inner = submitted.streams[0]!.subscribe(subscriber);
      }, (error) => subscriber.error(error));
      return () => {
        closed = true;
        inner?.unsubscribe();
      };
    });
  }

  /** Ends a request now (its stream completes with finishReason 'abort'). */
  abort(requestId: string): void {
    this.front.tell({ type: 'abort', requestId });
  }

  /** Spawns an extension actor into the tree (supervised under troupe/extensions); returns its ref. */
  async spawnExtension<M>(id: string, spec: ActorSpec<M>, restart: 'permanent' | 'transient' | 'temporary' = 'permanent'): Promise<ActorRef<M>> {
    const extensions = this.system.refFor<SupervisorMessage>(PATHS.extensions);
    const reply = await extensions.ask<{ path: string } | { error: string }>((replyTo) => ({ type: 'start-child', child: { id, restart, actor: spec }, replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS });
    if ('error' in reply) throw new Error(`extension ${id}: ${reply.error}`);
    return this.system.refFor<M>(reply.path);
  }

  /** Tells `subscriber` about every request submitted and finished (and resubmissions after a restart). */
  watchRequests(subscriber: ActorRef<RequestEvent>): void {
    this.front.tell({ type: 'watch-requests', subscriber });
  }

  /** Calls `onEvent` for every request event, through an observer actor of the caller's, outside the engine's tree. */
  async observeRequests(onEvent: (event: RequestEvent) => void): Promise<void> {
    const observer = await this.system.spawn<RequestEvent>(`troupe-observer-${nanoid(10)}`, { factory: () => new RequestObserver(onEvent), mailbox: { capacity: 1 << 16 } });
    this.watchRequests(observer);
  }

  /** Whether the engine makes progress now ('up'); /health answers 503 otherwise. */
  get engineState(): EngineState {
    return this.client.state;
  }

  /** KV usage and the scheduler's counts, from the scheduler (it owns the block pool). */
  async kvUsage(): Promise<KvUsage> {
    const stats = await this.schedulerStats();
    return {
      plan: this.kvPlan, usage: stats.kvUsage, running: stats.running, waiting: stats.waiting,
      prefixQueries: stats.prefixQueries, prefixHits: stats.prefixHits, preemptions: stats.preemptions,
    };
  }

  resetPrefixCache(): Promise<boolean> {
    return this.system.refFor<SchedulerMessage>(PATHS.scheduler).ask<boolean>((replyTo) => ({ type: 'reset-prefix-cache', replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS });
  }

  /** Where the engine's step time went so far (step-timings.ts): the scheduler's, the front's and this API's shares together. */
  async stepTimings(): Promise<StepTimingTotals> {
    const [stats, front] = await Promise.all([
      this.schedulerStats(),
      this.system.refFor<FrontMessage>(PATHS.front).ask<StepTimingTotals>((replyTo) => ({ type: 'timings', replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS }),
    ]);
    return addTimings(addTimings(addTimings(emptyTimings(), stats.timings), front), { gatewayMs: this.client.handlingMs });
  }

  /** Tokenizes a prompt the way a submit would (chat template, BOS, length checks), for callers who only count. */
  async tokenize(prompt: Prompt, maxTokens?: number): Promise<number[]> {
    return (await this.tokenizePrompt(prompt, maxTokens !== undefined ? { maxTokens } : {})).promptTokenIds;
  }

  /** The tokenizer's answer in full: ids and the prompt as text (the rendered chat template); for /tokenize. */
  async tokenizePrompt(prompt: Prompt, options: TokenizeOptions = {}): Promise<{ promptTokenIds: number[]; prompt: string | null }> {
    const reply = await this.tokenizer.ask<TokenizeReply>((replyTo) => ({ type: 'tokenize', prompt: toPromptInput(prompt), options, replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS });
    if (!reply.ok) throw reviveTokenizerError(reply.error);
    return { promptTokenIds: reply.promptTokenIds, prompt: reply.prompt };
  }

  /** Token ids back to text. */
  async decode(tokenIds: number[]): Promise<string> {
    const reply = await this.tokenizer.ask<DecodeReply>((replyTo) => ({ type: 'decode', tokenIds, replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS });
    if (!reply.ok) throw reviveTokenizerError(reply.error);
    return reply.text;
  }

  /** The tokenizer's facts (vocabulary size, special ids, chat template). */
  tokenizerInfo(): Promise<TokenizerInfo> {
    return this.tokenizer.ask<TokenizerInfo>((replyTo) => ({ type: 'info', replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS });
  }

  async shutdown(): Promise<void> {
    await this.system.stop(this.root, 30_000);
    await this.system.shutdown();
    await this.listener?.close();
  }

  private get tokenizer(): ActorRef<TokenizerMessage> {
    return this.system.refFor<TokenizerMessage>(PATHS.tokenizer);
  }

  private schedulerStats(): Promise<SchedulerActorStats> {
    return this.system.refFor<SchedulerMessage>(PATHS.scheduler).ask<SchedulerActorStats>((replyTo) => ({ type: 'stats', replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS });
  }

  private async generateOne(prompt: Prompt, params: GenerationParams): Promise<GenerationResult> {
    const submitted = await this.submit(prompt, params);
    const all = await Promise.all(submitted.streams.map((deltas) => lastValueFrom(deltas.pipe(toArray()))));
    const outputs = all.map((deltas, index): CompletionOutput => {
      const last = deltas[deltas.length - 1]!;
      const logprobs = deltas.flatMap((d) => d.logprobs ?? []);
      return {
        index,
        text: deltas.map((d) => d.text).join(''),
        tokenIds: deltas.flatMap((d) => d.tokenIds),
        finishReason: last.finishReason!,
        ...(params.logprobs !== undefined ? { logprobs } : {}),
      };
    });
    const promptLogprobs = all[0]![all[0]!.length - 1]!.promptLogprobs;
    return { requestId: submitted.requestId, promptTokenIds: submitted.promptTokenIds, outputs, ...(promptLogprobs ? { promptLogprobs } : {}) };
  }
}

/** Hands request events to a callback (observeRequests). */
class RequestObserver extends Actor<RequestEvent> {
  constructor(private readonly onEvent: (event: RequestEvent) => void) {
    super();
  }

  receive(event: RequestEvent): void {
    this.onEvent(event);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); })]).finally(() => clearTimeout(timer));
}

function toPromptInput(prompt: Prompt): PromptInput {
  if (typeof prompt === 'string') return { kind: 'text', text: prompt };
  if (Array.isArray(prompt)) return { kind: 'tokens', tokenIds: prompt };
  if ('promptTokenIds' in prompt) return { kind: 'tokens', tokenIds: prompt.promptTokenIds };
  return { kind: 'chat', messages: prompt.messages };
}
