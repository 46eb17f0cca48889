// The engine front's protocol spoken directly by a client actor of the test's
// own (no Troupe adapter in between): submit with a text prompt and n
// choices, typed refusals, deltas batched per engine step for all of the
// client's requests, and the engine's step time split adding up.
import test from 'ava';
import { PATHS, Troupe } from '../../actors/engine/troupe.js';
import type { EngineState } from '../../actors/front/engine-availability.js';
import type { ClientMessage, FrontRequest, RequestDelta, SubmitReply } from '../../actors/front/protocol.js';
import { Actor } from '../../runtime/index.js';
import { generatedModel } from '../models/helpers.js';

const MODEL = generatedModel('tiny', 7);

class RecordingClient extends Actor<ClientMessage> {
  readonly messages: ClientMessage[] = [];
  receive(message: ClientMessage): void {
    this.messages.push(message);
  }
}

test('a client of its own: one submit admits n choices, deltas come one message per step for all of them, refusals are typed', async (t) => {
  const llm = await Troupe.start({ model: MODEL, kvCacheMemory: '16MiB', maxModelLen: 512, threads: 1, log: () => {} });
  t.teardown(() => llm.shutdown());
  const recorder = new RecordingClient();
  const client = await llm.system.spawn<ClientMessage>('test-client', { factory: () => recorder });
  const front = llm.system.refFor<FrontRequest>(PATHS.front);
  const state = await front.ask<EngineState>((replyTo) => ({ type: 'connect', client, replyTo }), { timeoutMs: 30_000 });
  t.is(state.state, 'up');

  const submit = (requestId: string, params: object, prompt: object = { kind: 'text', text: 'In the beginning' }) =>
    front.ask<SubmitReply>((replyTo) => ({ type: 'submit', requestId, prompt, params, client, replyTo }) as FrontRequest, { timeoutMs: 30_000 });

  const bad = await submit('bad', { temperature: -1 });
  t.deepEqual(bad, { ok: false, error: { code: 'invalid_params', field: 'temperature', message: 'temperature must be a number >= 0, got -1' } });
  const long = await submit('long', { maxTokens: 511 });
  t.like(long, { ok: false, error: { code: 'context_length', field: 'maxTokens', maxModelLen: 512 } });
  const range = await submit('range', {}, { kind: 'tokens', tokenIds: [999_999] });
  t.like(range, { ok: false, error: { code: 'invalid_prompt', field: 'prompt' } });

  // the second submit of the same id arrives while the first is being admitted
  const [reply, duplicate] = await Promise.all([submit('r', { n: 3, maxTokens: 6, temperature: 0, ignoreEos: true }), submit('r', { n: 3 })]);
  t.like(duplicate, { ok: false, error: { code: 'duplicate_id', field: 'requestId' } });
  if (!reply.ok) return t.fail(reply.error.message);
  t.deepEqual(reply.requestIds, ['r-0', 'r-1', 'r-2']);
  t.true(reply.promptTokenIds.length > 1);
  t.is(reply.promptText, 'In the beginning');

  const deltas = () => recorder.messages.flatMap((m) => (m.type === 'deltas' ? m.deltas : []));
  for (let i = 0; deltas().filter((d) => d.finishReason).length < 3; i++) {
    if (i === 500) return t.fail('the choices did not finish');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const byChoice = new Map<string, RequestDelta[]>();
  for (const d of deltas()) byChoice.set(d.requestId, [...(byChoice.get(d.requestId) ?? []), d]);
  for (const id of reply.requestIds) {
    t.is(byChoice.get(id)!.flatMap((d) => d.tokenIds).length, 6, `${id}: 6 tokens`);
    t.is(byChoice.get(id)!.at(-1)!.finishReason, 'length');
  }
  // greedy choices of one prompt decode in the same steps: each step's deltas travel together
  const stepMessages = recorder.messages.filter((m) => m.type === 'deltas');
  t.true(stepMessages.some((m) => m.type === 'deltas' && new Set(m.deltas.map((d) => d.requestId)).size === 3), 'one message carries all three choices');
  t.true(stepMessages.length < deltas().length, `${stepMessages.length} messages for ${deltas().length} deltas`);

  const timings = await llm.stepTimings();
  t.true(timings.steps >= 6);
  t.true(timings.rows >= 18);
  t.true(timings.nativeMs > 0);
  t.true(timings.stepMs >= timings.nativeMs, 'the native step is part of the step wall');
  t.like(await llm.kvUsage(), { usage: 0, running: 0, waiting: 0 });
});
