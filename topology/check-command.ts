// `troupe topology check FILE [--model DIR]`: prints the plan, or every
// reason the topology cannot run (exit code 1).
import { loadTopology } from './load.js';
import { probeHardware } from './hardware.js';
import { modelShape } from './model-shape.js';
import { buildPlan, describePlan } from './plan.js';

export function runTopologyCheck(file: string, options: { model?: string }): number {
  try {
    const topology = loadTopology(file);
    const modelDir = options.model ?? topology.model;
    const shape = modelDir ? modelShape(modelDir, topology.serve.dtype) : undefined;
    const plan = buildPlan(topology, probeHardware(), shape, file);
    console.log(describePlan(plan));
    if (!shape) console.log('(no model given: shards and memory are not checked; pass --model DIR)');
    return 0;
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  }
}
