// The link group (a tensor group across nodes): ranks' vectors handed out to
// JS and put back, folded natively in (rank, segment) order to the bits of a
// single rank's in-order sum, whatever order the vectors arrive in. Abort and
// timeouts release a waiting all-reduce; disagreeing peers are named.
import test from 'ava';
import { packIdentity, TensorLinkExchange, unpackIdentity } from '../../actors/rank/tensor-link.js';
import { isCollectiveError } from '../../native/collectives.js';
import { LinkCollective } from '../../native/link-collective.js';
import { foldInOrder, segmentParts } from './segment-inputs.js';

const SEGMENTS = 8;
const M = 4099;

/** `ranks` link ranks in this thread, their exchanges wired through setImmediate (as messages arrive), in `order` of delivery. */
function wire(ranks: number, reverse = false) {
  const exchanges: TensorLinkExchange[] = [];
  const links = Array.from({ length: ranks }, (_, rank) => {
    const exchange = new TensorLinkExchange('g1', ranks, rank, (peer, message) => {
      const delay = reverse ? ranks - message.from : message.from;
      let left = delay;
      const hop = () => (left-- > 0 ? setImmediate(hop) : exchanges[peer]!.incoming(message));
      hop();
    });
    exchanges.push(exchange);
    const link = LinkCollective.create({ ranks, rank, capacityBytes: (SEGMENTS / ranks) * M * 4, onPart: (g, part) => exchange.outgoing(g, part) });
    exchange.attach(link);
    return link;
  });
  return { links, exchanges };
}

function rankInput(rank: number, ranks: number): Float32Array {
  const per = SEGMENTS / ranks;
  const out = new Float32Array(per * M);
  for (let j = 0; j < per; j++) out.set(segmentParts(rank * per + j, M), j * M);
  return out;
}

// at most 4: each waiting rank here holds one of the libuv pool's 4 threads
for (const ranks of [2, 4]) {
  for (const reverse of [false, true]) {
    test(`${ranks} link ranks fold 8 segments to a single rank's bits (${reverse ? 'last' : 'first'} rank's vector arrives first)`, async (t) => {
      const { links, exchanges } = wire(ranks, reverse);
      const expected = foldInOrder(SEGMENTS, M);
      // two generations in a row: the second's vectors may arrive while a rank still finishes the first
      for (let round = 1; round <= 2; round++) {
        const results = await Promise.all(links.map((link, rank) => link.allReduceAsync(rankInput(rank, ranks), 30_000, SEGMENTS / ranks)));
        for (const result of results) t.deepEqual(Buffer.from(result.buffer, 0, M * 4), Buffer.from(expected.buffer), `round ${round}`);
      }
      for (const [rank, link] of links.entries()) {
        const stats = link.stats();
        t.is(stats.allReduces, 2);
        t.is(stats.bytesSent, 2 * (SEGMENTS / ranks) * M * 4 * (ranks - 1));
        t.is(stats.bytesReceived, stats.bytesSent, `rank ${rank}`);
        t.is(link.generation, 2);
        link.close();
      }
      t.true(exchanges.every((e) => e.dropped === 0 && e.refusal === undefined));
    });
  }
}

test('a vector of another group incarnation or out of step is dropped; one generation ahead is held', (t) => {
  const puts: string[] = [];
  const sent: number[] = [];
  const exchange = new TensorLinkExchange('now', 3, 1, (peer) => sent.push(peer));
  exchange.attach({ put: (g, q) => (puts.push(`${g}:${q}`), '') });
  const part = new Float32Array(4);
  exchange.incoming({ type: 'tensor-part', group: 'before', generation: 1, from: 0, part });
  exchange.incoming({ type: 'tensor-part', group: 'now', generation: 1, from: 0, part }); // early: held
  exchange.incoming({ type: 'tensor-part', group: 'now', generation: 2, from: 2, part }); // two ahead: dropped
  exchange.incoming({ type: 'tensor-part', group: 'now', generation: 1, from: 1, part }); // from itself: dropped
  t.deepEqual(puts, []);
  exchange.outgoing(1, part);
  t.deepEqual(sent, [0, 2], 'its vector goes to every peer');
  t.deepEqual(puts, ['1:0'], 'the held vector is put once its generation starts');
  exchange.incoming({ type: 'tensor-part', group: 'now', generation: 1, from: 2, part });
  t.deepEqual(puts, ['1:0', '1:2']);
  t.is(exchange.dropped, 3);
});

test('abort releases a waiting all-reduce; a silent peer times out naming it; peers that disagree on a length are named', async (t) => {
  // aborted once the call is under way (its vector went out)
  const lone: LinkCollective = LinkCollective.create({ ranks: 2, rank: 0, capacityBytes: 64, onPart: () => setImmediate(() => lone.abort()) });
  const waiting = lone.allReduceAsync(new Float32Array(4), 30_000);
  const aborted = await t.throwsAsync(waiting);
  t.true(isCollectiveError(aborted, 'TROUPE_COLLECTIVE_ABORTED'), aborted?.message);
  await t.throwsAsync(lone.allReduceAsync(new Float32Array(4), 1000), { message: /unusable/ });
  lone.close();

  const silent = LinkCollective.create({ ranks: 2, rank: 1, capacityBytes: 64, onPart: () => {} });
  const timedOut = await t.throwsAsync(silent.allReduceAsync(new Float32Array(4), 50));
  t.true(isCollectiveError(timedOut, 'TROUPE_COLLECTIVE_TIMEOUT'));
  t.regex(timedOut!.message, /rank\(s\) 0 did not arrive over the node link/);
  silent.close();

  let link!: LinkCollective;
  link = LinkCollective.create({ ranks: 2, rank: 0, capacityBytes: 64, onPart: (g) => setImmediate(() => t.regex(link.put(g, 1, new Float32Array(3)), /different lengths/)) });
  const mismatch = await t.throwsAsync(link.allReduceAsync(new Float32Array(4), 30_000));
  t.true(isCollectiveError(mismatch, 'TROUPE_COLLECTIVE_MISMATCH'));
  t.regex(mismatch!.message, /rank 0 has 4, rank 1 has 3 elements/);
  link.close();
  t.throws(() => LinkCollective.create({ ranks: 1, rank: 0, capacityBytes: 64, onPart: () => {} }), { message: /ranks must be an integer in 2\.\.64, got 1/ });
});

test('on the wire a vector drops its -0.0 entries (a vocabulary slice), and comes back bit for bit', (t) => {
  const v = new Float32Array(1000).fill(-0);
  v.set([1.5, -0, 0, Number.NaN, -2e-45], 200); // +0, NaN and a subnormal are kept; an interior -0.0 too
  v[999] = 7;
  const packed = packIdentity(v)!;
  t.deepEqual([...packed.runs], [200, 201, 202, 205, 999, 1000]);
  const back = unpackIdentity(v.length, packed.runs, packed.values)!;
  t.deepEqual(Buffer.from(back.buffer), Buffer.from(v.buffer));
  t.is(packIdentity(Float32Array.from({ length: 100 }, (_, i) => i + 1)), undefined, 'a dense vector goes as it is');
  t.is(unpackIdentity(10, Uint32Array.from([5, 3]), new Float32Array(0)), undefined, 'runs that do not add up are refused');
  t.is(unpackIdentity(10, Uint32Array.from([0, 11]), new Float32Array(11)), undefined);
  t.is(unpackIdentity(10, Uint32Array.from([0, 2]), new Float32Array(3)), undefined);

  // through the exchange: a packed vector is put unpacked, and sent once per peer (copies for all but the last)
  const puts: Float32Array[] = [];
  const sent: { peer: number; part: Float32Array; runs?: Uint32Array }[] = [];
  const exchange = new TensorLinkExchange('g', 3, 0, (peer, m) => sent.push({ peer, part: m.part, ...(m.runs ? { runs: m.runs } : {}) }));
  exchange.attach({ put: (_g, _q, part) => (puts.push(part), '') });
  exchange.outgoing(1, v);
  t.deepEqual(sent.map((s) => s.peer), [1, 2]);
  t.not(sent[0]!.part, sent[1]!.part, 'each peer its own arrays');
  t.is(exchange.wireBytesSent, 2 * (packed.values.byteLength + packed.runs.byteLength));
  exchange.incoming({ type: 'tensor-part', group: 'g', generation: 1, from: 1, part: packed.values, runs: packed.runs, length: v.length });
  t.deepEqual(Buffer.from(puts[0]!.buffer), Buffer.from(v.buffer));
});
