// native/index.ts: NativeAddonError for a missing / broken binary, caching,
// and ISA selection through TROUPE_ISA (in child processes, since the choice
// is made once per thread at load).
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ISAS, NativeAddonError, defaultAddonPath, loadNative, type Isa } from '../../native/index.js';
import { LlamaModel } from '../../models/llama.js';
import { generatedModel } from '../models/helpers.js';

const execFileAsync = promisify(execFile);
const INDEX_URL = new URL('../../native/index.js', import.meta.url).href;
const LLAMA_URL = new URL('../../models/llama.js', import.meta.url).href;

/**
 * What shows which kernels a model ran: the bits of a 40-token prompt's logprobs on
 * an fp32 model, and the FP8 GEMM kernel of an online-FP8 one. Self-contained (the
 * ISA test runs its source in child processes too); isa undefined: the model's default.
 */
async function isaWitness(Llama: typeof LlamaModel, dir: string, isa?: Isa): Promise<{ bits: number[]; fp8Kernel: string }> {
  const tokens = Array.from({ length: 40 }, (_, i) => (i * 7919 + 13) % 128000);
  const fp32 = Llama.load(dir, { numBlocks: 4, dtype: 'float32', ...(isa ? { isa } : {}) });
  const [r] = await fp32.step([{ tokens, cachedTokens: 0, blockTable: [0, 1, 2, 3], promptLogprobs: { targets: [...tokens.slice(1), -1] } }]);
  await fp32.close();
  const fp8 = Llama.load(dir, { numBlocks: 4, quantization: 'fp8', ...(isa ? { isa } : {}) });
  const fp8Kernel = String(fp8.stats().fp8Kernel);
  await fp8.close();
  return { bits: Array.from(new Uint32Array(Float32Array.from(r!.promptLogprobs!.subarray(0, tokens.length - 1)).buffer)), fp8Kernel };
}

test('loadNative caches the module and reports features and ISAs', (t) => {
  const native = loadNative();
  t.is(loadNative(), native);
  t.is(loadNative({ path: defaultAddonPath() }), native);
  const cpu = native.cpuFeatures();
  for (const key of ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512bf16', 'asimd', 'bf16'] as const) t.is(typeof cpu[key], 'boolean');
  const available = native.availableIsas();
  // The automatic paths end with scalar; opt-in ones ('amx') follow.
  const automatic = available.filter((isa) => isa !== 'amx');
  t.is(automatic[automatic.length - 1], 'scalar');
  t.deepEqual(available, ISAS.filter((isa) => available.includes(isa)), 'best first');
  if (process.env.TROUPE_ISA === undefined || process.env.TROUPE_ISA === '') t.is(native.selectedIsa(), available[0]);
  t.log(`cpu: ${JSON.stringify(cpu)}; available: ${available.join(', ')}; selected: ${native.selectedIsa()}`);
});

test('a missing addon gives NativeAddonError with the rebuild hint', (t) => {
  const path = join(tmpdir(), 'troupe-no-such-dir', 'troupe_native.node');
  const err = t.throws(() => loadNative({ path }), { instanceOf: NativeAddonError });
  t.regex(err!.message, /native addon is missing/);
  t.true(err!.message.includes(path));
  t.regex(err!.message, /npm run build:native.*npm install/);
  t.is(err!.name, 'NativeAddonError');
});

test('a broken addon gives NativeAddonError naming the load error and the rebuild hint', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-native-'));
  const path = join(dir, 'troupe_native.node');
  writeFileSync(path, 'not an ELF file');
  const err = t.throws(() => loadNative({ path }), { instanceOf: NativeAddonError });
  t.regex(err!.message, /native addon at .* is broken and failed to load: /);
  t.true(err!.cause instanceof Error);
  t.true(err!.message.includes((err!.cause as Error).message), 'message includes the underlying error');
  t.regex(err!.message, /npm run build:native.*npm install/);
});

/** Runs `node -e script` (ESM) with TROUPE_ISA set; resolves stdout or rejects with stderr. */
async function childWithIsa(isa: string, script: string, extraEnv: Record<string, string> = {}): Promise<string> {
  const env = { ...process.env, TROUPE_ISA: isa, ...extraEnv };
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], { env });
  return stdout.trim();
}

test('TROUPE_ISA forces each ISA the CPU has, and the model computes with it', async (t) => {
  const native = loadNative();
  const available = native.availableIsas();
  // A model loaded without an isa option runs on the selected ISA (TROUPE_ISA, else the best).
  // Two witnesses of which kernels ran: an fp32 model's prompt logprobs, whose low bits differ
  // between paths with different lane layouts (avx512*, avx2, scalar), and an online-FP8
  // model's GEMM kernel, which its stats name.
  const dir = generatedModel('tiny', 3);
  const script = `
    import { loadNative } from ${JSON.stringify(INDEX_URL)};
    import { LlamaModel } from ${JSON.stringify(LLAMA_URL)};
    const witness = ${isaWitness.toString()};
    console.log(JSON.stringify({ isa: loadNative().selectedIsa(), ...(await witness(LlamaModel, ${JSON.stringify(dir)})) }));`;
  const expected = new Map<Isa, Awaited<ReturnType<typeof isaWitness>>>();
  for (const isa of available) expected.set(isa, await isaWitness(LlamaModel, dir, isa));
  if (available.includes('avx512bf16')) t.notDeepEqual(expected.get('avx512bf16'), expected.get('avx2'), 'the paths are distinguishable');
  if (available.includes('neon-bf16')) t.notDeepEqual(expected.get('neon-bf16')!.fp8Kernel, expected.get('neon')!.fp8Kernel, 'the paths are distinguishable');
  await Promise.all(
    available.map(async (isa) => {
      const { isa: selected, ...seen } = JSON.parse(await childWithIsa(isa, script)) as { isa: string; bits: number[]; fp8Kernel: string };
      t.is(selected, isa);
      t.deepEqual(seen, expected.get(isa), `child forced to ${isa} computes with ${isa}`);
    }),
  );
  for (const isa of ISAS.filter((i) => !available.includes(i))) {
    t.log(`CPU lacks '${isa}': checking that TROUPE_ISA=${isa} is an error`);
    const err = await t.throwsAsync(childWithIsa(isa, `import { loadNative } from ${JSON.stringify(INDEX_URL)}; loadNative();`));
    t.regex(String((err as { stderr?: string }).stderr), new RegExp(`TROUPE_ISA '${isa}' cannot run on this CPU: it lacks .*CPU has:`));
  }
});

test('TROUPE_ISA naming an unknown ISA is an error listing the valid names', async (t) => {
  const err = await t.throwsAsync(childWithIsa('avx1024', `import { loadNative } from ${JSON.stringify(INDEX_URL)}; loadNative();`));
  t.regex(String((err as { stderr?: string }).stderr), /RangeError: TROUPE_ISA 'avx1024' is not a known ISA \(expected one of avx512bf16, avx512, avx2, neon-bf16, neon, scalar, amx\)/);
});

test('TROUPE_CPU_FEATURES caps detection, the ISA list, the default ISA and what a model may be given', async (t) => {
  const detected = loadNative().detectedCpuFeatures();
  const script = `
    import { loadNative } from ${JSON.stringify(INDEX_URL)};
    const n = loadNative();
    const { LlamaModel } = await import(${JSON.stringify(LLAMA_URL)});
    const refused = {};
    for (const isa of ['avx512bf16', 'avx512']) {
      try { await LlamaModel.load(${JSON.stringify(generatedModel('tiny', 3))}, { numBlocks: 4, isa }).close(); refused[isa] = false; } catch (e) { refused[isa] = e.message; }
    }
    console.log(JSON.stringify({ available: n.availableIsas(), selected: n.selectedIsa(), cpu: n.cpuFeatures(), detected: n.detectedCpuFeatures(), cap: n.cpuFeatureCap(), refused }));`;
  const child = JSON.parse(await childWithIsa('', script, { TROUPE_CPU_FEATURES: ' avx2, fma,f16c ' })) as {
    available: Isa[]; selected: Isa; cpu: Record<string, boolean>; detected: Record<string, boolean>; cap: string[]; refused: Record<string, string | false>;
  };
  t.deepEqual(child.cap, ['avx2', 'fma', 'f16c']);
  t.deepEqual(child.detected, detected, 'detection itself is unchanged');
  for (const [name, has] of Object.entries(child.cpu)) {
    t.is(has, ['avx2', 'fma', 'f16c'].includes(name) && detected[name as keyof typeof detected], `${name} capped`);
  }
  const avx2 = detected.avx2 && detected.fma && detected.f16c;
  t.deepEqual(child.available, avx2 ? ['avx2', 'scalar'] : ['scalar']);
  t.is(child.selected, avx2 ? 'avx2' : 'scalar');
  // On ARM64 the x86 ISAs are refused for the build itself, before any feature.
  const lacks = process.arch === 'arm64' ? 'x86-64' : 'avx512f';
  for (const isa of ['avx512bf16', 'avx512']) t.regex(String(child.refused[isa]), new RegExp(`isa '${isa}' cannot run on this CPU: it lacks ${lacks}`));

  const forced = await t.throwsAsync(childWithIsa('avx512', `import { loadNative } from ${JSON.stringify(INDEX_URL)}; loadNative();`, { TROUPE_CPU_FEATURES: 'avx2,fma,f16c' }));
  t.regex(String((forced as { stderr?: string }).stderr), /TROUPE_ISA 'avx512' cannot run on this CPU: it lacks .* \[features capped by TROUPE_CPU_FEATURES=avx2,fma,f16c\]/);
  const unknown = await t.throwsAsync(childWithIsa('', `import { loadNative } from ${JSON.stringify(INDEX_URL)}; loadNative();`, { TROUPE_CPU_FEATURES: 'avx2,avx1024' }));
  t.regex(String((unknown as { stderr?: string }).stderr), /RangeError: TROUPE_CPU_FEATURES names unknown CPU feature\(s\) 'avx1024' \(known: avx2, fma, /);
  const scalarOnly = JSON.parse(await childWithIsa('', script, { TROUPE_CPU_FEATURES: 'fma' })) as { available: Isa[]; selected: Isa };
  t.deepEqual(scalarOnly.available, ['scalar']);
  t.is(scalarOnly.selected, 'scalar');
  if (process.arch === 'arm64' && detected.asimd) {
    const neonOnly = JSON.parse(await childWithIsa('', script, { TROUPE_CPU_FEATURES: 'asimd' })) as { available: Isa[]; selected: Isa };
    t.deepEqual(neonOnly.available, ['neon', 'scalar'], 'asimd without bf16: neon-bf16 capped away');
    t.is(neonOnly.selected, 'neon');
  }
});
