// Two Linux network namespaces joined by a veth pair, each end shaped by an
// htb qdisc (a bandwidth limit; this kernel has no netem, so latency comes
// from faulty-relay.ts), for tests and benchmarks of links between machines:
//
//   namespace a                          namespace b
//   lo 127.0.0.1                         lo 127.0.0.1
//   veth <a> 10.77.0.1/30  <-- htb -->   veth <b> 10.77.0.2/30
//
// The addresses never clash with the host's or another pair's: each pair's
// veth lives only inside its own two namespaces. Processes started with
// spawn() are SIGKILLed by destroy(), which then deletes both namespaces
// (and with them the veth pair); destroy() also runs at process exit, so a
// failed test leaves nothing behind.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface NetnsEnd {
  namespace: string;
  device: string;
  address: string;
}

export interface NetnsLinkOptions {
  /** htb rate on each end, e.g. '1gbit', '10gbit'; none: unshaped. */
  rate?: string;
}

let counter = 0;

/** Runs `ip`/`tc`; throws with its stderr when it fails. */
function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr.trim() || `exit ${result.status}`}`);
}

export class NetnsLink {
  readonly a: NetnsEnd;
  readonly b: NetnsEnd;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;
  private readonly onExit = () => this.destroy();

  private constructor(id: string) {
    this.a = { namespace: `troupe-${id}-a`, device: `tr${id}a`, address: '10.77.0.1' };
    this.b = { namespace: `troupe-${id}-b`, device: `tr${id}b`, address: '10.77.0.2' };
  }

  /** Why namespaces cannot be used here, or null when they can (tries one, and removes it). */
  static unavailable(): string | null {
    if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
    if (process.getuid?.() !== 0) return 'network namespaces need root';
    let link: NetnsLink | undefined;
    try {
      link = NetnsLink.create({ rate: '1gbit' });
      return null;
    } catch (error) {
      return `could not set up two namespaces with a shaped veth pair: ${(error as Error).message}`;
    } finally {
      link?.destroy();
    }
  }

  static create(options: NetnsLinkOptions = {}): NetnsLink {
    const link = new NetnsLink(`${process.pid % 100_000}${(counter++).toString(36)}`);
    process.once('exit', link.onExit);
    try {
      const { a, b } = link;
      run('ip', ['netns', 'add', a.namespace]);
      run('ip', ['netns', 'add', b.namespace]);
      run('ip', ['link', 'add', a.device, 'netns', a.namespace, 'type', 'veth', 'peer', 'name', b.device, 'netns', b.namespace]);
      for (const end of [a, b]) {
        run('ip', ['-n', end.namespace, 'addr', 'add', `${end.address}/30`, 'dev', end.device]);
        run('ip', ['-n', end.namespace, 'link', 'set', end.device, 'up']);
        run('ip', ['-n', end.namespace, 'link', 'set', 'lo', 'up']);
        if (options.rate) {
          run('ip', ['netns', 'exec', end.namespace, 'tc', 'qdisc', 'add', 'dev', end.device, 'root', 'handle', '1:', 'htb', 'default', '10']);
          run('ip', ['netns', 'exec', end.namespace, 'tc', 'class', 'add', 'dev', end.device, 'parent', '1:', 'classid', '1:10',
            'htb', 'rate', options.rate, 'ceil', options.rate, 'quantum', '60000']);
        }
      }
    } catch (error) {
      link.destroy();
      throw error;
    }
    return link;
  }

  /** Starts `command` inside namespace `side`; destroy() kills it. */
  spawn(side: 'a' | 'b', command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    if (this.destroyed) throw new Error('this namespace pair is gone');
    const child = spawn('ip', ['netns', 'exec', this[side].namespace, command, ...args], options);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Kills what spawn() started and deletes both namespaces (the veth pair goes with them). Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener('exit', this.onExit);
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const end of [this.a, this.b]) {
      // processes still inside (a grandchild) would keep the namespace's network alive: kill them too
      const pids = spawnSync('ip', ['netns', 'pids', end.namespace], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
      }
      spawnSync('ip', ['netns', 'del', end.namespace]);
    }
  }

  /** Whether both namespaces are gone (for tests of the cleanup). */
  static exists(namespace: string): boolean {
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    return list.split('\n').some((line) => line.split(' ')[0] === namespace);
  }
}
