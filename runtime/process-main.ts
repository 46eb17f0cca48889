// Entry point of a child process that hosts actors for its parent. The link is
// the socket on file descriptor 3 (set up by the parent's spawn), framed by
// StreamPort; the boot parameters come in TROUPE_CHILD_BOOT.
import { Socket } from 'node:net';
import { runChildHost } from './child-host.js';
import type { ChildBoot } from './host-protocol.js';
import { StreamPort } from './stream-port.js';

const boot = JSON.parse(process.env.TROUPE_CHILD_BOOT ?? '{}') as ChildBoot;
const port = new StreamPort(new Socket({ fd: 3, readable: true, writable: true }), { peer: 'parent process' });
// the parent going away ends this process: nothing here outlives it
port.on('close', () => process.exit(0));
runChildHost(port, boot, { onIdle: () => port.end() });
