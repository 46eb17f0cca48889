// How many compute threads this process should use by default: the cores it
// may run on. That is its CPU affinity mask (Node's availableParallelism()
// reads sched_getaffinity on Linux), further capped by a cgroup CPU quota
// when one is set: a container limited to 2 CPUs of a 64-core host gets 2,
// not 64 (threads beyond the quota only get throttled).
//
//   cgroup v2: /proc/self/cgroup has "0::<path>"; the quota is
//              /sys/fs/cgroup/<path>/cpu.max = "<quota> <period>" or "max <period>",
//              and every ancestor's cpu.max caps it too.
//   cgroup v1: "<n>:cpu,cpuacct:<path>" (or "cpu"); cpu.cfs_quota_us (-1: none)
//              and cpu.cfs_period_us under /sys/fs/cgroup/cpu,cpuacct (or cpu)/<path>,
//              or at the mount's root when a container shows the host's path.
// A quota of q per period p allows ceil(q / p) cores' worth of time.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

export interface CoresProbe {
  /** Filesystem root to read /proc and /sys under (tests point it at fixtures). */
  root?: string;
  /** CPUs in the affinity mask (default: availableParallelism()). */
  affinity?: number;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Cores' worth of CPU time a quota allows, or undefined when unlimited or unreadable. */
function quotaCores(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/** The cgroup v2 limit along <path> and its ancestors. */
function cgroupV2Limit(root: string, path: string): number | undefined {
  let limit: number | undefined;
  const parts = path.split('/').filter((p) => p !== '');
  for (let depth = parts.length; depth >= 0; depth--) {
    const text = read(join(root, 'sys/fs/cgroup', ...parts.slice(0, depth), 'cpu.max'));
    if (text === undefined) continue;
    const [q, p] = text.trim().split(/\s+/);
    if (q !== undefined && q !== 'max') limit = minDefined(limit, quotaCores(Number(q), Number(p ?? 100000)));
  }
  return limit;
}

function cgroupV1Limit(root: string, controllers: string, path: string): number | undefined {
  const mounts = [controllers, 'cpu,cpuacct', 'cpuacct,cpu', 'cpu'];
  for (const mount of mounts) {
    for (const dir of [join(root, 'sys/fs/cgroup', mount, path), join(root, 'sys/fs/cgroup', mount)]) {
      const quota = read(join(dir, 'cpu.cfs_quota_us'));
      const period = read(join(dir, 'cpu.cfs_period_us'));
      if (quota !== undefined && period !== undefined) return quotaCores(Number(quota.trim()), Number(period.trim()));
    }
  }
  return undefined;
}

/** The cgroup CPU quota of this process in cores, or undefined when there is none. */
export function cgroupCpuLimit(root = '/'): number | undefined {
  const cgroups = read(join(root, 'proc/self/cgroup'));
  if (cgroups === undefined) return undefined;
  let limit: number | undefined;
  for (const line of cgroups.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, id, controllers, path] = m;
    if (id === '0' && controllers === '') limit = minDefined(limit, cgroupV2Limit(root, path!));
    else if (controllers!.split(',').includes('cpu')) limit = minDefined(limit, cgroupV1Limit(root, controllers!, path!));
  }
  return limit;
}

/** Default compute threads: the affinity mask's CPUs, capped by the cgroup quota; at least 1. */
export function usableCores(probe: CoresProbe = {}): number {
  const affinity = probe.affinity ?? availableParallelism();
  const quota = cgroupCpuLimit(probe.root ?? '/');
  return Math.max(1, quota === undefined ? affinity : Math.min(affinity, quota));
}
