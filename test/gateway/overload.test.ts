// Overload at about twice capacity: the gateway admits max_num_seqs running
// plus --max-pending-requests waiting and refuses the rest with 429; every
// request it accepted completes in full.
import test from 'ava';
import { engineIdle, eventually, startGateway, type TestGateway } from './helpers.js';

const MAX_NUM_SEQS = 4;
const MAX_PENDING = 4;
let gateway: TestGateway;

test.before(async () => {
  gateway = await startGateway({ engine: { maxNumSeqs: MAX_NUM_SEQS }, gateway: { maxNumSeqs: MAX_NUM_SEQS, maxPendingRequests: MAX_PENDING } });
});

test.after.always(async () => {
  await gateway?.close();
});

async function complete(body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${gateway.url}/v1/completions`, { method: 'POST', body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

test.serial('twice the capacity at once: the excess gets 429, every accepted request completes', async (t) => {
  const capacity = MAX_NUM_SEQS + MAX_PENDING;
  const results = await Promise.all(Array.from({ length: 2 * capacity }, (_, i) =>
    complete({ prompt: [100 + i, 200, 300], max_tokens: 48, ignore_eos: true, temperature: 0 })));
  const accepted = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 429);
  t.is(accepted.length + refused.length, results.length, `statuses: ${results.map((r) => r.status).join(',')}`);
  t.true(refused.length > 0, 'some requests were refused');
  t.true(accepted.length >= MAX_NUM_SEQS, 'at least what can run was accepted');
  t.true(accepted.length <= capacity, 'never more than the capacity');
  for (const r of accepted) {
    const choice = (r.json['choices'] as { text: string; finish_reason: string }[])[0]!;
    t.is(choice.finish_reason, 'length');
    t.is((r.json['usage'] as { completion_tokens: number }).completion_tokens, 48);
  }
  const error = refused[0]!.json['error'] as { type: string; code: string; message: string };
  t.is(error.type, 'TooManyRequestsError');
  t.is(error.code, '429');
  t.regex(error.message, /--max-pending-requests 4/);
  t.true(await eventually(() => engineIdle(gateway.url)));
  t.is(gateway.server.ctx.admission.admitted, 0);
  t.is((await complete({ prompt: [1, 2], max_tokens: 2 })).status, 200, 'after the burst, requests are served again');
});

test.serial('a single request asking for more sequences than the server ever takes is a 400, not a 429', async (t) => {
  const r = await complete({ prompt: [[1], [2], [3]], n: 3, max_tokens: 1 });
  t.is(r.status, 400);
  t.is((r.json['error'] as { param: string }).param, 'n');
});
