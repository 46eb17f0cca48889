// Entry point of a worker thread that hosts actors for its parent.
import { parentPort, workerData } from 'node:worker_threads';
import { runChildHost } from './child-host.js';
import type { ChildBoot } from './host-protocol.js';

const port = parentPort!;
runChildHost(port, workerData as ChildBoot, { onIdle: () => port.close() });
