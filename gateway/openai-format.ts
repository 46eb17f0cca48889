// Engine deltas -> OpenAI response bodies and stream chunks, in vLLM's shapes.
// Plain classes with no I/O: a route feeds them the engine's deltas and
// sends what they return.
//
//   completions:  { id: "cmpl-...", object: "text_completion", created, model,
//                   choices: [{ index, text, logprobs, finish_reason, stop_reason }], usage }
//   chat:         { id: "chatcmpl-...", object: "chat.completion", created, model,
//                   choices: [{ index, message: { role, content, refusal: null, tool_calls: [] }, logprobs, finish_reason, stop_reason }], usage }
//   chat chunks:  object "chat.completion.chunk", choices[].delta; each choice's
//                 first chunk is { role: "assistant", content: "" }
//   usage chunk (stream_options.include_usage): the last chunk, choices: [] and usage.
//   usage:        { prompt_tokens, total_tokens, completion_tokens, prompt_tokens_details: { cached_tokens } }
//                 cached_tokens: prompt tokens served from the prefix cache (each prompt's first choice)
//   stop_reason:  the stop string or stop_token_ids entry that ended a choice; null for eos, length, abort
//
// Choice `index` = prompt index * n + sample index, as vLLM numbers them.
import { randomUUID } from 'node:crypto';
import type { RequestDelta } from '../actors/front/request-record.js';
import type { FinishReason } from '../actors/scheduler/request.js';
import { chatLogprobs, codePointLength, completionLogprobs, promptPositions, type PositionLogprob, type TokenTexts } from './logprobs-format.js';
import type { GenerationPlan } from './request-mapping.js';
import { parseToolCalls, toolCallDeltas, type ToolCall } from './tool-calls.js';
import { ForcedCallStream } from './tool-call-stream.js';

interface Usage {
  prompt_tokens: number;
  total_tokens: number;
  completion_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** A tokenized prompt: its ids, and the text echo returns. */
export interface PreparedPrompt {
  tokenIds: number[];
  text: string;
}

/** One engine delta of choice `index`. */
export interface ChoiceDelta {
  index: number;
  delta: RequestDelta;
}

function newRequestId(kind: GenerationPlan['kind']): string {
  return `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`;
}

function usage(promptTokens: number, completionTokens: number, cachedTokens = 0): Usage {
  return { prompt_tokens: promptTokens, total_tokens: promptTokens + completionTokens, completion_tokens: completionTokens, prompt_tokens_details: { cached_tokens: cachedTokens } };
}

interface ChoiceState {
  promptIndex: number;
  text: string;
  /** Text length sent so far (code points), where the next logprob text_offset starts. */
  sentLength: number;
  positions: PositionLogprob[];
  tokens: number;
  started: boolean;
  finishReason: FinishReason | null;
  stopReason: string | number | null;
  cachedTokens: number;
  promptLogprobs?: RequestDelta['promptLogprobs'];
}

/** What both formatters share: the request's identity, its prompts and per-choice progress. */
abstract class ResponseShaper {
  readonly id: string;
  readonly created = Math.floor(Date.now() / 1000);
  protected readonly choices: ChoiceState[];

  constructor(
    protected readonly plan: GenerationPlan,
    protected readonly model: string,
    protected readonly prompts: PreparedPrompt[],
    protected readonly texts: TokenTexts,
  ) {
    this.id = newRequestId(plan.kind);
    this.choices = Array.from({ length: prompts.length * plan.n }, (_, index) => ({
      promptIndex: Math.floor(index / plan.n), text: '', sentLength: 0, positions: [], tokens: 0, started: false, finishReason: null, stopReason: null, cachedTokens: 0,
    }));
  }

  get choiceCount(): number {
    return this.choices.length;
  }

  /** Total usage: each prompt counted once, every choice's tokens. */
  usage(): Usage {
    const promptTokens = this.prompts.reduce((sum, p) => sum + p.tokenIds.length, 0);
    const cachedTokens = this.prompts.reduce((sum, _, i) => sum + this.choices[i * this.plan.n]!.cachedTokens, 0);
    return usage(promptTokens, this.plan.promptOnly ? 0 : this.choices.reduce((sum, c) => sum + c.tokens, 0), cachedTokens);
  }

  /** The usage chunk that ends a stream with include_usage. */
  usageChunk(): Record<string, unknown> | null {
    return this.plan.includeUsage ? { ...this.envelope(true), choices: [], usage: this.usage() } : null;
  }

  /** Records a delta (for the final response); returns the choice's state. */
  protected record(event: ChoiceDelta): ChoiceState {
    const choice = this.choices[event.index]!;
    const d = event.delta;
    if (!this.plan.promptOnly) {
      choice.text += d.text;
      choice.tokens += d.tokenIds.length;
      for (const lp of d.logprobs ?? []) choice.positions.push({ token: lp.token, logprob: lp.logprob, ...(lp.top ? { top: lp.top } : {}) });
    }
    if (d.finishReason) choice.finishReason = this.plan.promptOnly ? 'length' : d.finishReason;
    if (d.stopReason !== undefined && !this.plan.promptOnly) choice.stopReason = d.stopReason;
    if (d.cachedTokens !== undefined) choice.cachedTokens = d.cachedTokens;
    if (d.promptLogprobs) choice.promptLogprobs = d.promptLogprobs;
    return choice;
  }

  protected choiceUsage(choice: ChoiceState): Usage {
    return usage(this.prompts[choice.promptIndex]!.tokenIds.length, this.plan.promptOnly ? 0 : choice.tokens, choice.cachedTokens);
  }

  protected envelope(chunk: boolean): Record<string, unknown> {
    const object = this.plan.kind === 'chat' ? (chunk ? 'chat.completion.chunk' : 'chat.completion') : 'text_completion';
    return { id: this.id, object, created: this.created, model: this.model };
  }

  protected chunk(choice: Record<string, unknown>, state: ChoiceState): Record<string, unknown> {
    return { ...this.envelope(true), choices: [choice], ...(this.plan.continuousUsage ? { usage: this.choiceUsage(state) } : {}) };
  }

  /** Chunks to send for this delta (possibly none). */
  abstract onDelta(event: ChoiceDelta): Record<string, unknown>[];
  /** The whole (non-streaming) response, once every choice finished. */
  abstract response(): Record<string, unknown>;
}

export class CompletionShaper extends ResponseShaper {
  /** With echo and logprobs (or max_tokens 0), a choice is sent whole when it ends: the prompt's logprobs arrive last. */
  private get holdsChoices(): boolean {
    return this.plan.echo && (this.plan.logprobs !== null || this.plan.promptOnly);
  }

  onDelta(event: ChoiceDelta): Record<string, unknown>[] {
    const choice = this.record(event);
    const d = event.delta;
    if (this.holdsChoices) return d.finishReason ? [this.chunk(this.wholeChoice(event.index), choice)] : [];
    let text = d.text;
    if (!choice.started && this.plan.echo) text = this.prompts[choice.promptIndex]!.text + text;
    choice.started = true;
    const wantLogprobs = this.plan.logprobs !== null && (d.logprobs?.length ?? 0) > 0;
    if (!text && !wantLogprobs && !d.finishReason) return [];
    const logprobs = wantLogprobs
      ? completionLogprobs(d.logprobs!.map((lp) => ({ token: lp.token, logprob: lp.logprob, ...(lp.top ? { top: lp.top } : {}) })), this.plan.logprobs!, this.texts, choice.sentLength)
      : null;
    choice.sentLength += codePointLength(text);
    return [this.chunk({ index: event.index, text, logprobs, finish_reason: d.finishReason ?? null, stop_reason: d.finishReason ? choice.stopReason : null }, choice)];
  }

  response(): Record<string, unknown> {
    return {
      ...this.envelope(false),
      choices: this.choices.map((_, index) => this.wholeChoice(index)),
      usage: this.usage(),
    };
  }

  private wholeChoice(index: number): Record<string, unknown> {
    const choice = this.choices[index]!;
    const prompt = this.prompts[choice.promptIndex]!;
    const text = (this.plan.echo ? prompt.text : '') + choice.text;
    let logprobs = null;
    if (this.plan.logprobs !== null) {
      const positions = this.plan.echo ? [...promptPositions(prompt.tokenIds, choice.promptLogprobs), ...choice.positions] : choice.positions;
      logprobs = completionLogprobs(positions, this.plan.logprobs, this.texts);
    }
    return { index, text, logprobs, finish_reason: choice.finishReason, stop_reason: choice.stopReason, prompt_logprobs: null };
  }
}

export class ChatShaper extends ResponseShaper {
  /** The first chunks of a stream: each choice's role (and, with echo, the echoed text). */
  start(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    this.choices.forEach((choice, index) => {
      choice.started = true;
      out.push(this.chunk({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }, choice));
      if (this.plan.chatEchoText) out.push(this.chunk({ index, delta: { content: this.plan.chatEchoText }, logprobs: null, finish_reason: null }, choice));
    });
    return out;
  }

  onDelta(event: ChoiceDelta): Record<string, unknown>[] {
    if (this.plan.tools && !this.streamsAsContent.has(event.index)) return this.onToolDelta(event);
    const choice = this.record(event);
    const d = event.delta;
    const positions = (d.logprobs ?? []).map((lp) => ({ token: lp.token, logprob: lp.logprob, ...(lp.top ? { top: lp.top } : {}) }));
    return this.contentChunks(event.index, choice, d.text, positions, d.finishReason !== undefined);
  }

  /** Text as a content delta (with its positions' logprobs), and the final chunk when `ends`. */
  private contentChunks(index: number, choice: ChoiceState, text: string, positions: PositionLogprob[], ends: boolean): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const wantLogprobs = this.plan.logprobs !== null && positions.length > 0;
    if (text || wantLogprobs) {
      const logprobs = wantLogprobs ? chatLogprobs(positions, this.plan.logprobs!, this.texts) : null;
      out.push(this.chunk({ index, delta: { content: text }, logprobs, finish_reason: null }, choice));
    }
    if (ends) out.push(this.chunk({ index, delta: {}, logprobs: null, finish_reason: choice.finishReason, stop_reason: choice.stopReason }, choice));
    return out;
  }

  /**
   * With tools, forced calls (tool_choice "required" or a named function: JSON
   * calls by grammar) stream as they are generated: ForcedCallStream. Under
   * "auto", a reply whose first characters cannot begin a call (llama3_json:
   * "{", "[" or <|python_tag|>) streams as content from then on; one that can
   * is held until it ends (a call is only known to be one when its JSON is
   * complete), then sent as its calls (each its id and name, then its
   * arguments, as OpenAI streams them) or as content.
   */
  private onToolDelta(event: ChoiceDelta): Record<string, unknown>[] {
    const choice = this.record(event);
    const out: Record<string, unknown>[] = [];
    const forced = this.plan.tools!.grammar !== null ? this.forcedStream(event.index) : null;
    if (!forced && !mayBeginCall(choice.text)) {
      // everything so far as one content delta, then content as it comes
      this.streamsAsContent.add(event.index);
      return this.contentChunks(event.index, choice, choice.text, choice.positions, event.delta.finishReason !== undefined);
    }
    if (forced) for (const delta of forced.feed(choice.text)) out.push(this.chunk({ index: event.index, delta, logprobs: null, finish_reason: null }, choice));
    if (!event.delta.finishReason) return out;
    if (forced?.started) {
      out.push(this.chunk({ index: event.index, delta: {}, logprobs: null, finish_reason: choice.finishReason === 'stop' ? 'tool_calls' : choice.finishReason, stop_reason: null }, choice));
      return out;
    }
    const calls = this.toolCalls(event.index);
    if (calls) {
      for (const delta of toolCallDeltas(calls)) out.push(this.chunk({ index: event.index, delta, logprobs: null, finish_reason: null }, choice));
    } else if (choice.text || this.plan.logprobs !== null) {
      const logprobs = this.plan.logprobs !== null ? chatLogprobs(choice.positions, this.plan.logprobs, this.texts) : null;
      out.push(this.chunk({ index: event.index, delta: { content: choice.text }, logprobs, finish_reason: null }, choice));
    }
    out.push(this.chunk({ index: event.index, delta: {}, logprobs: null, finish_reason: calls && choice.finishReason === 'stop' ? 'tool_calls' : choice.finishReason, stop_reason: null }, choice));
    return out;
  }

  private forcedStream(at: number): ForcedCallStream {
    let s = this.forcedStreams.get(at);
    if (!s) this.forcedStreams.set(at, (s = new ForcedCallStream(this.plan.tools!.choice === 'required' && this.plan.tools!.parallel)));
    return s;
  }

  private readonly forcedStreams = new Map<number, ForcedCallStream>();
  /** Choices under "auto" whose reply turned out not to be a call: streamed as content. */
  private readonly streamsAsContent = new Set<number>();

  /**
   * A finished choice's tool calls (parsed once), or null when its reply is not
   * calls. A forced array of calls cut off by max_tokens keeps the calls it
   * completed (finish_reason stays "length").
   */
  private toolCalls(at: number): ToolCall[] | null {
    const choice = this.choices[at]!;
    const tools = this.plan.tools;
    if (!tools) return null;
    const truncated = choice.finishReason === 'length' && tools.choice === 'required' && tools.parallel;
    if (choice.finishReason !== 'stop' && !truncated) return null;
    if (!this.parsedCalls.has(at)) this.parsedCalls.set(at, parseToolCalls(choice.text, tools, truncated));
    return this.parsedCalls.get(at)!;
  }

  private readonly parsedCalls = new Map<number, ToolCall[] | null>();

  response(): Record<string, unknown> {
    return {
      ...this.envelope(false),
      choices: this.choices.map((choice, index) => {
        const calls = this.toolCalls(index);
        return {
          index,
          message: calls
            ? { role: 'assistant', content: null, refusal: null, tool_calls: calls }
            : { role: 'assistant', content: (this.plan.chatEchoText ?? '') + choice.text, refusal: null, tool_calls: [] },
          logprobs: this.plan.logprobs !== null ? chatLogprobs(choice.positions, this.plan.logprobs, this.texts) : null,
          finish_reason: calls && choice.finishReason === 'stop' ? 'tool_calls' : choice.finishReason,
          stop_reason: calls ? null : choice.stopReason,
        };
      }),
      usage: this.usage(),
      prompt_logprobs: null,
    };
  }
}

const PYTHON_TAG = '<|python_tag|>';

/** Whether a reply that begins with `text` may still be llama3_json calls. */
function mayBeginCall(text: string): boolean {
  const t = text.trimStart();
  if (t === '') return true;
  if (t.startsWith('{') || t.startsWith('[')) return true;
  if (PYTHON_TAG.startsWith(t)) return true;
  return t.startsWith(PYTHON_TAG) && mayBeginCall(t.slice(PYTHON_TAG.length));
}
