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
import { toBf16Array } from './bf16.js';
import { randomFloat32, rng } from './random.js';

const execFileAsync = promisify(execFile);
const INDEX_URL = new URL('../../native/index.js', import.meta.url).href;

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

test('TROUPE_ISA forces each ISA the CPU has, and kernel calls use it', async (t) => {
  const native = loadNative();
  const available = native.availableIsas();
  // Random data with K=300: the result bits differ between paths with different
  // lane layouts or rounding (avx512bf16, avx512, avx2), so the child's bits tell
  // which kernel it ran. (avx2 and scalar agree bitwise by design.)
  const [M, N, K] = [2, 3, 300];
  const next = rng(7);
  const w = toBf16Array(randomFloat32(N * K, next));
  const x = randomFloat32(M * K, next, 3);
  const script = `
    import { loadNative } from ${JSON.stringify(INDEX_URL)};
    const n = loadNative();
    const out = new Float32Array(${M * N});
    n.matmulBf16(Uint16Array.from(${JSON.stringify(Array.from(w))}), Float32Array.from(${JSON.stringify(Array.from(x))}), out, ${M}, ${N}, ${K});
    console.log(JSON.stringify({ isa: n.selectedIsa(), bits: Array.from(new Uint32Array(out.buffer)) }));`;
  const bitsOf = (isa: Isa): number[] => {
    const out = new Float32Array(M * N);
    native.matmulBf16(w, x, out, M, N, K, isa);
    return Array.from(new Uint32Array(out.buffer));
  };
  if (available.includes('avx512bf16')) t.notDeepEqual(bitsOf('avx512bf16'), bitsOf('avx2'), 'the paths are distinguishable');
  if (available.includes('neon-bf16')) t.notDeepEqual(bitsOf('neon-bf16'), bitsOf('neon'), 'the paths are distinguishable');
  await Promise.all(
    available.map(async (isa) => {
      const child = JSON.parse(await childWithIsa(isa, script)) as { isa: string; bits: number[] };
      t.is(child.isa, isa);
      t.deepEqual(child.bits, bitsOf(isa), `child forced to ${isa} computes with ${isa}`);
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

test('TROUPE_CPU_FEATURES caps detection, the ISA list, the default ISA and per-call dispatch', async (t) => {
  const detected = loadNative().detectedCpuFeatures();
  const script = `
    import { loadNative } from ${JSON.stringify(INDEX_URL)};
    const n = loadNative();
    const refused = {};
    for (const isa of ['avx512bf16', 'avx512']) {
      try { n.matmulBf16(new Uint16Array(4), new Float32Array(2), new Float32Array(2), 1, 2, 2, isa); refused[isa] = false; } catch (e) { refused[isa] = e.message; }
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
