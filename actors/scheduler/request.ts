// A request as the scheduler sees it: tokens and counts, nothing about text.
//
// Invariant: a request only has `numComputedTokens` (tokens whose KV is in the
// cache) and `numTokens` (prompt + generated). A prefill is a step that
// advances numComputedTokens by many; a decode advances it by one. There is
// no phase field.
//
// A request with a grammar keeps its matcher here: it has accepted exactly
// outputTokens, so a preempted request (which keeps its tokens) resumes with
// it as it is, and a scheduler rebuilt after a restart replays the tokens
// into a new one before the request is added.
import type { SequenceGrammar } from '../grammar/sequence-grammar.js';

export type RequestStatus = 'waiting' | 'running' | 'finished';
export type FinishReason = 'stop' | 'length' | 'abort';

export interface StopRules {
  maxTokens: number;
  minTokens: number;
  /** eos ids from generation_config.json; ignored with ignoreEos. */
  eosTokenIds: readonly number[];
  ignoreEos: boolean;
  stopTokenIds: readonly number[];
}

export interface NewRequest<S = unknown> {
  id: string;
  promptTokens: readonly number[];
  stop: StopRules;
  /** Lower runs first under the priority policy (like vLLM). */
  priority?: number;
  /** Passed through to the rank untouched (sampling parameters). */
  sampling?: S;
  /** Tokens generated before (a request resubmitted after a restart continues from them). */
  outputTokens?: readonly number[];
  /** Compute every prompt position (prompt log-probabilities need them all). */
  skipPrefixCache?: boolean;
  /** The request's grammar matcher, having accepted outputTokens. */
  grammar?: SequenceGrammar;
}

export class SchedulerRequest<S = unknown> {
  readonly id: string;
  readonly promptTokens: readonly number[];
  readonly outputTokens: number[];
  readonly skipPrefixCache: boolean;
  readonly stop: StopRules;
  readonly priority: number;
  readonly arrival: number;
  readonly sampling: S | undefined;
  readonly grammar: SequenceGrammar | undefined;
  status: RequestStatus = 'waiting';
  numComputedTokens = 0;
  /** Prompt tokens found in the prefix cache when last admitted. */
  numCachedTokens = 0;
  numPreemptions = 0;
  finishReason: FinishReason | null = null;
  /** Chained hashes of this request's full blocks (prompt and output), filled lazily. */
  readonly blockHashes: string[] = [];
  /** Leading blocks of its table already entered in the prefix index. */
  registeredBlocks = 0;
  /** Part of a step that has not come back yet (pipeline parallelism keeps several in flight). */
  inFlight = false;

  constructor(request: NewRequest<S>, arrival: number) {
    this.id = request.id;
    this.promptTokens = request.promptTokens;
    this.stop = request.stop;
    this.priority = request.priority ?? 0;
    this.arrival = arrival;
    this.sampling = request.sampling;
    this.outputTokens = [...(request.outputTokens ?? [])];
    this.skipPrefixCache = request.skipPrefixCache ?? false;
    this.grammar = request.grammar;
  }

  get numTokens(): number {
    return this.promptTokens.length + this.outputTokens.length;
  }

  /** Token `i` of prompt + output. */
  tokenAt(i: number): number {
    const p = this.promptTokens.length;
    return i < p ? this.promptTokens[i]! : this.outputTokens[i - p]!;
  }

  allTokens(): number[] {
    return [...this.promptTokens, ...this.outputTokens];
  }
}
