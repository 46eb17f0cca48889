// Model options: --cpu-offload-gb is refused (there is no GPU backend to
// offload from) rather than accepted and ignored; --dtype resolution.
import test from 'ava';
import { join } from 'node:path';
import { readLlamaConfig } from '../../models/config.js';
import { ModelOptionError } from '../../models/errors.js';
import { LlamaModel } from '../../models/llama.js';
import { resolveDtype, resolveModelOptions, validateCpuOffload } from '../../models/options.js';
import { GOLDEN_DIR } from './helpers.js';

const config = readLlamaConfig(join(GOLDEN_DIR, 'config.json'));

test('--cpu-offload-gb is refused with a clear error, at validation and at load', (t) => {
  const err = t.throws(() => validateCpuOffload(4), { instanceOf: ModelOptionError });
  t.is(err!.option, '--cpu-offload-gb');
  t.regex(err!.message, /--cpu-offload-gb: offloads GPU weights to CPU memory, and Troupe has no GPU backend yet.*Remove the option \(got 4\)/);
  t.throws(() => validateCpuOffload(-1), { message: /must be a non-negative number of GiB/ });
  t.notThrows(() => validateCpuOffload(0));
  t.notThrows(() => validateCpuOffload(undefined));
  t.throws(() => LlamaModel.load(GOLDEN_DIR, { cpuOffloadGb: 2 }), { instanceOf: ModelOptionError, message: /no GPU backend/ });
});

test('--dtype: auto is bfloat16 for bf16 / fp16 checkpoints and float32 for fp32 ones; fp16 arithmetic is refused', (t) => {
  t.is(resolveDtype(undefined, config), 'bfloat16');
  t.is(resolveDtype('auto', { ...config, torchDtype: 'float16' }), 'bfloat16');
  t.is(resolveDtype('auto', { ...config, torchDtype: 'float32' }), 'float32');
  t.is(resolveDtype('bf16', config), 'bfloat16');
  t.is(resolveDtype('float32', config), 'float32');
  t.throws(() => resolveDtype('float16', config), { instanceOf: ModelOptionError, message: /--dtype: float16 arithmetic is not supported on CPU/ });
  t.throws(() => resolveDtype('int4', config), { message: /unknown dtype 'int4'/ });
});

test('block size, KV pages and max model length are validated against the config', (t) => {
  const r = resolveModelOptions({ blockSize: 32, maxModelLen: 4096 }, config);
  t.like(r, { blockSize: 32, maxModelLen: 4096, numBlocks: 129, dtype: 'bfloat16' });
  t.throws(() => resolveModelOptions({ blockSize: 0 }, config), { message: /--block-size: must be a positive integer/ });
  t.throws(() => resolveModelOptions({ maxModelLen: 200000 }, config), { message: /exceeds the model's max_position_embeddings \(131072\)/ });
});
