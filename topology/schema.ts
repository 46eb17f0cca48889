// The topology file: how a model is split into ranks and where each rank
// runs. YAML, validated with zod; field names follow vLLM's flags in
// snake_case. Everything but tensor/pipeline sizes has a default.
//
//   model: /models/Llama-3.1-8B-Instruct       # optional; `troupe serve DIR` overrides
//   tensor_parallel_size: 2
//   pipeline_parallel_size: 2
//   layer_partition: [17, 15]                   # optional: layers per stage
//   placement: thread                           # default for every rank: local | thread | process
//   stages:                                     # optional per-stage overrides
//     - { stage: 1, placement: { node: worker-1 } }
//     - { stage: 0, rank_placements: [thread, { node: worker-1 }] }   # one per tensor rank:
//                                                 # a tensor group across nodes (all-reduce over the node link)
//   threads_per_rank: 1                         # compute threads of each rank
//   allow_oversubscription: false               # more compute threads than cores: refused unless true
//   nodes:
//     - { name: worker-1, address: 10.0.0.2 }
//   leader: { listen: "0.0.0.0:7070" }           # where nodes join (127.0.0.1 unless told)
//   memory: { kv_cache: 2GiB, per_rank_limit: 8GiB }
//   serve: { host: 127.0.0.1, port: 8000, max_model_len: 8192, ... }
import { z } from 'zod';

const memorySize = z.union([z.string().regex(/^\s*\d+(\.\d+)?\s*[a-zA-Z]*\s*$/, 'a size like 2GiB, 512MiB or 4GB'), z.number().positive()]);
const placement = z.union([z.enum(['local', 'thread', 'process']), z.object({ node: z.string().min(1) }).strict()]);
const positiveInt = z.number().int().positive();

export const topologySchema = z.object({
  model: z.string().min(1).optional(),
  tensor_parallel_size: positiveInt.default(1),
  pipeline_parallel_size: positiveInt.default(1),
  layer_partition: z.array(positiveInt).optional(),
  placement: placement.default('thread'),
  stages: z.array(z.object({ stage: z.number().int().nonnegative(), placement: placement.optional(), rank_placements: z.array(placement).min(1).optional() }).strict()
    .refine((s) => (s.placement === undefined) !== (s.rank_placements === undefined), { message: 'give a stage either placement (all its ranks) or rank_placements (one per tensor rank), not both or neither' })).default([]),
  threads_per_rank: positiveInt.optional(),
  /** Run more compute threads than cores (tests, development); refused otherwise. */
  allow_oversubscription: z.boolean().default(false),
  nodes: z.array(z.object({ name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (at most 64)'), address: z.string().min(1) }).strict()).default([]),
  leader: z.object({ listen: z.string().regex(/^[^:\s]+:\d{1,5}$/, 'HOST:PORT') }).strict().optional(),
  memory: z.object({ kv_cache: memorySize.optional(), per_rank_limit: memorySize.optional() }).strict().default({}),
  serve: z.object({
    host: z.string().optional(),
    port: z.number().int().min(0).max(65535).optional(),
    max_model_len: positiveInt.optional(),
    max_num_seqs: positiveInt.optional(),
    max_num_batched_tokens: positiveInt.optional(),
    block_size: positiveInt.optional(),
    dtype: z.enum(['auto', 'bfloat16', 'bf16', 'float32', 'fp32']).optional(),
    served_model_name: z.string().optional(),
    enable_prefix_caching: z.boolean().optional(),
  }).strict().default({}),
}).strict();

export type Topology = z.output<typeof topologySchema>;
export type RankPlacement = z.output<typeof placement>;
