// The row-parallel all-reduce of tensor parallelism: 8 partial sums split
// over 1, 2, 4 or 8 ranks fold to the same bits as one rank adding them in order.
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { CollectiveGroup } from '../../native/collectives.js';
import { foldInOrder, segmentParts } from './segment-inputs.js';

const SEGMENTS = 8;
const M = 4099;

async function run(ranks: number): Promise<{ result: Float32Array; allReduces: number }[]> {
  const group = CollectiveGroup.create({ ranks, capacityBytes: (SEGMENTS / ranks) * M * 4 });
  try {
    const workers = Array.from({ length: ranks }, (_, rank) => new Worker(new URL('./fixtures/segment-rank.js', import.meta.url), {
      workerData: { descriptor: group.descriptor, rank, ranks, segments: SEGMENTS, m: M },
    }));
    return await Promise.all(workers.map((w) => new Promise<{ result: Float32Array; allReduces: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    })));
  } finally {
    group.close();
  }
}

test('segments over 1, 2, 4 and 8 ranks fold to the bits of the in-order sum', async (t) => {
  const expected = foldInOrder(SEGMENTS, M);
  // the order matters for these inputs: a different grouping gives other bits
  const other = Float32Array.from(segmentParts(7, M));
  for (let s = SEGMENTS - 2; s >= 0; s--) {
    const part = segmentParts(s, M);
    for (let i = 0; i < M; i++) other[i] = Math.fround(other[i]! + part[i]!);
  }
  t.notDeepEqual(Buffer.from(other.buffer), Buffer.from(expected.buffer), 'reverse order differs, so the test proves the order');
  for (const ranks of [1, 2, 4, 8]) {
    const results = await run(ranks);
    for (const { result, allReduces } of results) {
      t.is(allReduces, 1);
      t.deepEqual(Buffer.from(result.buffer, result.byteOffset, result.byteLength), Buffer.from(expected.buffer), `${ranks} ranks`);
    }
  }
});
