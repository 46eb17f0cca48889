// Model checksums: the same files give the same checksum; any change to a
// weight or the config changes it; a rank refuses a model that differs.
import test from 'ava';
import { cpSync, mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelChecksum, modelChecksumAsync } from '../../models/checksum.js';
import { ActorSystem } from '../../runtime/index.js';
import { RankActor } from '../../actors/rank/rank-actor.js';
import { generatedModel } from './helpers.js';

test('a copy has the same checksum; one changed byte of weights changes it; a rank refuses the changed copy', async (t) => {
  const original = generatedModel('tiny', 5);
  const copy = mkdtempSync(join(tmpdir(), 'troupe-checksum-'));
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  cpSync(original, copy, { recursive: true });
  const sum = modelChecksum(original);
  t.regex(sum, /^[0-9a-f]{64}$/);
  t.is(modelChecksum(copy), sum);
  t.is(await modelChecksumAsync(copy), sum, 'the async reading gives the same checksum');
  const fd = openSync(join(copy, 'model.safetensors'), 'r+');
  writeSync(fd, Buffer.from([0x42]), 0, 1, 4096 * 4);
  closeSync(fd);
  t.not(modelChecksum(copy), sum);
  t.is(await modelChecksumAsync(copy), modelChecksum(copy));

  const system = new ActorSystem();
  t.teardown(() => system.shutdown());
  const modelOptions = { numBlocks: 8, maxModelLen: 64, threads: 1 };
  await t.notThrowsAsync(system.spawn('ok', { factory: () => new RankActor({ model: original, modelOptions, expectedChecksum: sum }) }));
  await t.throwsAsync(system.spawn('bad', { factory: () => new RankActor({ model: copy, modelOptions, expectedChecksum: sum }) }), { message: /is not the leader's \(checksum .*copy the same model files/ });
});
