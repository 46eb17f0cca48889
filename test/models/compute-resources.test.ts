// The forward step's compute resources: compute threads that spin briefly and
// then block (never a long spin), a scratch arena sized at load (its
// high-water mark reported, a larger step growing it once without changing a
// bit), and the default thread count: the cores the process may use, cgroup
// CPU quota included (models/cores.ts).
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cgroupCpuLimit, usableCores } from '../../models/cores.js';
import { LlamaModel } from '../../models/llama.js';
import { resolveModelOptions } from '../../models/options.js';
import { readLlamaConfig } from '../../models/config.js';
import { bitsEqual, generatedModel, GOLDEN_DIR, randomTokens, teacherForced, tempDir } from './helpers.js';

test('idle compute threads block in the kernel after a short spin; steps wake them', async (t) => {
  const model = LlamaModel.load(generatedModel('tiny'), { threads: 2, numBlocks: 32 });
  await teacherForced(model, randomTokens(40, 128256, 1));
  // Read the counters only after a pause far longer than the 50 us spin: the
  // worker is then asleep in futex_wait, and its sleep is counted (read right
  // after a step, it may still be spinning).
  await sleep(200);
  const before = model.stats();
  t.true(before.poolJobs > 0, 'the step ran parallel jobs');
  t.true(before.poolSleeps > 0, 'an idle worker blocked in the kernel');
  await teacherForced(model, randomTokens(40, 128256, 2));
  await sleep(200);
  const after = model.stats();
  t.true(after.poolSleeps > before.poolSleeps, `sleeps ${before.poolSleeps} -> ${after.poolSleeps}`);
  t.true(after.poolJobs > before.poolJobs);
  await model.close();
});

test('scratch comes from an arena sized at load; a larger step grows it once, with the same results', async (t) => {
  const prompt = randomTokens(120, 128256, 3);
  const small = LlamaModel.load(generatedModel('tiny'), { numBlocks: 32, maxNumBatchedTokens: 16, maxNumSeqs: 4 });
  const roomy = LlamaModel.load(generatedModel('tiny'), { numBlocks: 32, maxNumBatchedTokens: 4096 });
  const s0 = small.stats();
  t.true(s0.scratchCapacityBytes > 0, 'reserved at load');
  t.is(s0.scratchGrowths, 0);
  await teacherForced(small, prompt.slice(0, 12));
  t.is(small.stats().scratchGrowths, 0, 'a step within maxNumBatchedTokens fits');
  const a = await teacherForced(small, prompt);
  const b = await teacherForced(roomy, prompt);
  const s1 = small.stats();
  t.is(s1.scratchGrowths, 1, 'the 120-token step grew the arena once');
  t.true(s1.peakScratchBytes > s0.peakScratchBytes && s1.peakScratchBytes <= s1.scratchCapacityBytes, 'high-water mark within the arena');
  t.is(roomy.stats().scratchGrowths, 0);
  t.true(bitsEqual(a.logprobs, b.logprobs), 'same logprobs whatever the arena');
  await small.close();
  await roomy.close();
});

test('maxNumBatchedTokens / maxNumSeqs default and are validated', (t) => {
  const config = readLlamaConfig(join(GOLDEN_DIR, 'config.json'));
  t.like(resolveModelOptions({}, config), { maxNumBatchedTokens: 2048, maxNumSeqs: 256 });
  t.throws(() => resolveModelOptions({ maxNumBatchedTokens: 0 }, config), { message: /--max-num-batched-tokens: must be a positive integer/ });
  t.throws(() => resolveModelOptions({ maxNumSeqs: 1.5 }, config), { message: /--max-num-seqs: must be a positive integer/ });
});

/** A fake filesystem root with /proc/self/cgroup and cgroup files. */
function fakeRoot(files: Record<string, string>): string {
  const root = tempDir('cgroup');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('default threads: the affinity mask, capped by a cgroup v2 or v1 CPU quota (ancestors included)', (t) => {
  const v2 = fakeRoot({ 'proc/self/cgroup': '0::/jobs/a\n', 'sys/fs/cgroup/jobs/a/cpu.max': '150000 100000\n', 'sys/fs/cgroup/cpu.max': 'max 100000\n' });
  t.is(cgroupCpuLimit(v2), 2, '1.5 CPUs of quota: 2 threads');
  t.is(usableCores({ root: v2, affinity: 8 }), 2);
  t.is(usableCores({ root: v2, affinity: 1 }), 1, 'the affinity mask caps too');
  const parent = fakeRoot({ 'proc/self/cgroup': '0::/a/b\n', 'sys/fs/cgroup/a/b/cpu.max': 'max 100000\n', 'sys/fs/cgroup/a/cpu.max': '300000 100000\n' });
  t.is(usableCores({ root: parent, affinity: 16 }), 3, "a parent's quota applies");
  const none = fakeRoot({ 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': 'max 100000\n' });
  t.is(cgroupCpuLimit(none), undefined);
  t.is(usableCores({ root: none, affinity: 6 }), 6);
  const v1 = fakeRoot({ 'proc/self/cgroup': '4:memory:/x\n2:cpu,cpuacct:/docker/abc\n', 'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '250000\n', 'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n' });
  t.is(usableCores({ root: v1, affinity: 64 }), 3, 'v1 quota at the mount root (container view of a host path)');
  const v1none = fakeRoot({ 'proc/self/cgroup': '2:cpu:/\n', 'sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', 'sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' });
  t.is(usableCores({ root: v1none, affinity: 4 }), 4);
  t.is(usableCores({ root: fakeRoot({}), affinity: 0 }), 1, 'at least one');
  t.true(usableCores() >= 1, 'this machine');
});
