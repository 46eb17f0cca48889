// What a host link (a worker thread, a child process, a node connection) may
// do to the system that owns it: route envelopes, keep the registry of the
// paths it hosts, and report its actors' ends. Hosts and their proxy cells
// are typed against this, not against the whole ActorSystem; for a node the
// link policy (node/link-policy.ts) narrows it further.
import type { StopReason } from './actor.js';
import type { Cell } from './cell.js';
import type { Envelope } from './envelope.js';
import type { RefResolver } from './ref.js';

/** A host as the system's registry sees it. */
export interface HostEndpoint {
  readonly childSystemId: string;
  post(envelope: Envelope): void;
}

export interface HostSystem extends RefResolver {
  readonly debugSerialize: boolean;
  route(envelope: Envelope, origin?: 'self' | 'parent' | 'child'): void;
  unregister(path: string, cell: Cell): void;
  reportStopped(path: string, incarnation: string, reason: StopReason): void;
  /** A path an actor inside the host spawned by itself (threads and processes only). */
  registerForwarded(path: string, host: HostEndpoint): void;
  unregisterForwarded(path: string, host: HostEndpoint): void;
  /** The host is gone: forget its system id, its forwarded paths and its node name. */
  forgetHost(host: HostEndpoint): void;
}
