// Reading a topology: a YAML file, or the same plan from --tensor-parallel-size
// and --pipeline-parallel-size without a file.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { TopologyError } from './errors.js';
import { topologySchema, type Topology } from './schema.js';

export function parseTopology(text: string, source = 'topology'): Topology {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new TopologyError(source, [`not valid YAML: ${(error as Error).message.split('\n')[0]}`]);
  }
  const result = topologySchema.safeParse(raw ?? {});
  if (!result.success) throw new TopologyError(source, result.error.issues.map(describeIssue));
  return result.data;
}

export function loadTopology(file: string): Topology {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TopologyError(file, [`cannot read the file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
  }
  return parseTopology(text, file);
}

/** The plan --tensor-parallel-size / --pipeline-parallel-size describe. */
export function topologyFromFlags(flags: { tensorParallelSize?: number; pipelineParallelSize?: number; placement?: 'local' | 'thread' | 'process' }): Topology {
  return topologySchema.parse({
    tensor_parallel_size: flags.tensorParallelSize ?? 1,
    pipeline_parallel_size: flags.pipelineParallelSize ?? 1,
    placement: flags.placement ?? ((flags.tensorParallelSize ?? 1) * (flags.pipelineParallelSize ?? 1) === 1 ? 'local' : 'thread'),
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  return `${where}: ${issue.message}`;
}
