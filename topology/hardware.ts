// What this process may use: cores (affinity and cgroup CPU quota), memory
// (cgroup limit or physical), GPUs when present. A topology is checked
// against this before any actor starts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';

export interface Hardware {
  cores: number;
  memoryBytes: number;
  gpus: string[];
  /** Where each figure came from, for the plan's printout. */
  notes: string[];
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

export function probeHardware(): Hardware {
  const notes: string[] = [];
  let cores = availableParallelism();
  notes.push(`${cores} cores in this process's affinity mask`);
  const cpuMax = read('/sys/fs/cgroup/cpu.max'); // cgroup v2: "<quota> <period>" or "max <period>"
  if (cpuMax && !cpuMax.startsWith('max')) {
    const [quota, period] = cpuMax.split(/\s+/).map(Number);
    if (quota! > 0 && period! > 0) {
      const quotaCores = Math.max(1, Math.floor(quota! / period!));
      if (quotaCores < cores) notes.push(`cgroup CPU quota allows ${quotaCores}`);
      cores = Math.min(cores, quotaCores);
    }
  }
  let memoryBytes = totalmem();
  notes.push(`${(memoryBytes / 2 ** 30).toFixed(1)} GiB physical memory`);
  const memMax = read('/sys/fs/cgroup/memory.max');
  if (memMax && memMax !== 'max' && Number(memMax) > 0 && Number(memMax) < memoryBytes) {
    memoryBytes = Number(memMax);
    notes.push(`cgroup memory limit ${(memoryBytes / 2 ** 30).toFixed(1)} GiB`);
  }
  const gpus = existsSync('/proc/driver/nvidia/gpus') ? readdirSync('/proc/driver/nvidia/gpus') : [];
  if (gpus.length) notes.push(`${gpus.length} NVIDIA GPU(s) present (not used by the CPU backend)`);
  return { cores, memoryBytes, gpus, notes };
}
