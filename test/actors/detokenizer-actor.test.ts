// The detokenizer actor in a real ActorSystem: one state per request id,
// deltas per add (or per engine step with add-batch), stop reported, states
// freed, and a restarted stream resuming after the text already sent.
import test from 'ava';
import { DetokenizerActor } from '../../actors/detokenizer/actor.js';
import type { CreateReply, DeltaReply, DetokenizerMessage } from '../../actors/detokenizer/messages.js';
import type { DetokenizeParams } from '../../actors/detokenizer/incremental.js';
import { Vocabulary } from '../../actors/tokenizer/vocabulary.js';
import { ActorSystem, moduleActor, type ActorRef } from '../../runtime/index.js';
import { EOT, llamaTokenizer, tokenizerDir } from './tokenizer-fixture.js';

const ASK = { timeoutMs: 30_000 };
const encode = (text: string) => llamaTokenizer().encode(text, { addSpecialTokens: false });

const system = new ActorSystem();
test.after.always(() => system.shutdown());
// Spawned from its module with a model directory, as the engine's supervisor would.
const started = system.spawn<DetokenizerMessage>('detokenizer', moduleActor(new URL('../../actors/detokenizer/actor.js', import.meta.url), 'DetokenizerActor', [{ modelDir: tokenizerDir() }]));

const create = (ref: ActorRef<DetokenizerMessage>, requestId: string, params: DetokenizeParams = {}, replayTokens?: number[]) =>
  ref.ask<CreateReply>((replyTo) => ({ type: 'create', requestId, params, ...(replayTokens ? { replayTokens } : {}), replyTo }), ASK);
const add = (ref: ActorRef<DetokenizerMessage>, requestId: string, tokenIds: number[], final = false) =>
  ref.ask<DeltaReply>((replyTo) => ({ type: 'add', requestId, tokenIds, final, replyTo }), ASK);
const count = (ref: ActorRef<DetokenizerMessage>) => ref.ask<number>((replyTo) => ({ type: 'count', replyTo }), ASK);
const deltaOf = (reply: DeltaReply) => (reply.ok ? reply.delta : `<error ${reply.error.message}>`);

test.serial('per-request deltas through the actor; final frees the state', async (t) => {
  const ref = await started;
  const text = 'Llamas 🦙 say 你好.';
  const ids = encode(text);
  t.deepEqual(await create(ref, 'a'), { ok: true });
  t.deepEqual(await create(ref, 'b', { stop: ['say'] }), { ok: true });
  t.is(await count(ref), 2);

  let a = '';
  let b = '';
  let stopB: string | null = null;
  for (const id of ids) {
    a += deltaOf(await add(ref, 'a', [id]));
    const rb = await add(ref, 'b', [id]);
    b += deltaOf(rb);
    if (rb.ok && rb.stop) stopB = rb.stop;
  }
  a += deltaOf(await add(ref, 'a', [EOT], true));
  t.is(a, text);
  t.is(b, 'Llamas 🦙 ');
  t.is(stopB, 'say');
  t.is(await count(ref), 1, 'a was freed by its final add');
  ref.tell({ type: 'free', requestId: 'b' });
  t.is(await count(ref), 0);
});

test.serial('add-batch carries one engine step for many requests, in order', async (t) => {
  const ref = await started;
  await create(ref, 'x');
  await create(ref, 'y', { skipSpecialTokens: false });
  const replies = await ref.ask<DeltaReply[]>((replyTo) => ({
    type: 'add-batch',
    items: [{ requestId: 'x', tokenIds: [9906] }, { requestId: 'y', tokenIds: [EOT], final: true }, { requestId: 'nobody', tokenIds: [1] }],
    replyTo,
  }), ASK);
  t.deepEqual(replies.slice(0, 2), [
    { ok: true, requestId: 'x', delta: 'Hello', stop: null },
    { ok: true, requestId: 'y', delta: '<|eot_id|>', stop: null },
  ]);
  t.like(replies[2], { ok: false, requestId: 'nobody' });
  t.regex((replies[2] as { error: { message: string } }).error.message, /no detokenizer state for request nobody; create it first/);
  ref.tell({ type: 'free', requestId: 'x' });
  t.is(await count(ref), 0);
});

test.serial('a re-created request replays the tokens already sent and resumes with no repeated or lost text', async (t) => {
  const ref = await started;
  const text = 'Restarts must not repeat 🦙 or lose 你好 text.';
  const ids = encode(text);
  const params = { stop: ['never'] };
  const cutAt = 9; // the first incarnation saw 9 tokens, then the engine restarted
  await create(ref, 'r', params);
  let sent = '';
  for (const id of ids.slice(0, cutAt)) sent += deltaOf(await add(ref, 'r', [id]));
  ref.tell({ type: 'free', requestId: 'r' });

  t.deepEqual(await create(ref, 'r', params, ids.slice(0, cutAt)), { ok: true });
  for (const id of ids.slice(cutAt)) sent += deltaOf(await add(ref, 'r', [id]));
  sent += deltaOf(await add(ref, 'r', [], true));
  t.is(sent, text);
  t.is(await count(ref), 0);
});

test.serial('bad create requests are refused with a reason', async (t) => {
  const ref = await started;
  t.like(await create(ref, 'p', { stop: [''] }), { ok: false, error: { name: 'RangeError' } });
  await create(ref, 'dup');
  const again = await create(ref, 'dup');
  t.false(again.ok);
  t.regex((again as { error: { message: string } }).error.message, /already has detokenizer state/);
  ref.tell({ type: 'free', requestId: 'dup' });
  t.is(await count(ref), 0);
});

test('a detokenizer actor can share a vocabulary already loaded (local placement)', async (t) => {
  const local = new ActorSystem();
  t.teardown(() => local.shutdown());
  const vocabulary = Vocabulary.load(tokenizerDir());
  const ref = await local.spawn<DetokenizerMessage>('d', { factory: () => new DetokenizerActor({ vocabulary }) });
  await create(ref, 'q');
  t.is(deltaOf(await add(ref, 'q', [9906, 1917], true)), 'Hello world');
});
