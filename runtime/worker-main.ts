// Entry point of a worker thread that hosts one actor (and any children it
// spawns). It runs a child ActorSystem wired to the parent's port.
import { parentPort, workerData } from 'node:worker_threads';
import { toErrorInfo } from './errors.js';
import { ActorSystem } from './system.js';
import type { ToParent, ToWorker, WorkerBoot } from './thread-protocol.js';

const port = parentPort!;
const boot = workerData as WorkerBoot;
const system = new ActorSystem({ debugSerialize: boot.debugSerialize }, port, boot.systemId);

function post(message: ToParent): void {
  system.notifyParent(message);
}

try {
  await system.spawnHosted(boot.path, boot.incarnation, { ...boot.spec, placement: 'local' });
} catch (error) {
  post({ t: 'start-failed', error: toErrorInfo(error) });
  port.close();
  process.exit(1);
}

const hosted = system.refFor(boot.path);
void system.watch(hosted).then((reason) => {
  post({ t: 'stopped', reason });
  port.close();
});

port.on('message', (message: ToWorker) => {
  if (message.t === 'stop') void system.stop(hosted);
  else for (const frame of message.frames) system.routeFrame(frame, 'parent');
});
post({ t: 'started' });
