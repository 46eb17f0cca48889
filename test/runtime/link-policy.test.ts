// The node link policy (runtime/node/link-policy.ts) as a plain class: a node
// hosting one tensor rank of a group may send that group's all-reduce vectors
// to the group's other ranks (its siblings under the rank group), and nothing
// outside the rank group; it never spawns, stops or watches.
import test from 'ava';
import type { Envelope } from '../../runtime/envelope.js';
import { NodeLinkPolicy } from '../../runtime/node/link-policy.js';

const RANKS = 'troupe/engine/ranks';
const part = { type: 'tensor-part', group: 'g', generation: 1, from: 1, part: new Float32Array(4) };
const msg = (to: string, extra: Partial<Extract<Envelope, { k: 'msg' }>> = {}): Envelope => ({ k: 'msg', to, body: part, ...extra });

test('a node hosting tensor rank 1 reaches its tensor peers and nothing past the rank group', (t) => {
  const policy = new NodeLinkPolicy('n1', () => [`${RANKS}/rank1`]);
  t.is(policy.check(msg(`${RANKS}/rank0`)), null, 'tensor peer on the leader');
  t.is(policy.check(msg(`${RANKS}/rank0`, { from: `${RANKS}/rank1` })), null);
  t.is(policy.check(msg(`${RANKS}/tensor-groups`, { ask: '$ask/abc/def' })), null, 'its group descriptor');
  t.regex(policy.check(msg('troupe/engine/scheduler'))!, /neither an actor this node hosts nor a peer of one/);
  t.regex(policy.check(msg(`${RANKS}/rank0/child`))!, /neither an actor this node hosts nor a peer of one/);
  t.regex(policy.check(msg('troupe/engine'))!, /neither/);
  t.regex(policy.check(msg(`${RANKS}/rank0`, { from: 'troupe/front' }))!, /naming "troupe\/front" as its from path/);
  t.regex(policy.check({ k: 'stop', to: `${RANKS}/rank0` })!, /a "stop" envelope/);
  t.regex(policy.check({ k: 'watch', to: `${RANKS}/rank0`, watcher: `${RANKS}/rank1` })!, /a "watch" envelope/);
});
