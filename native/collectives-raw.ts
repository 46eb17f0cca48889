// The addon's raw shared-memory collective functions (native/src/collectives/
// collectives_binding.h). native/collectives.ts wraps them; use that instead.
// Kept apart from collectives.ts so native/index.ts can name them without an
// import cycle.

/** An opaque native handle (a type-tagged External). */
export type RawCollectiveHandle = { readonly __troupeCollectiveHandle: unique symbol };

export interface RawCollectiveDescriptor {
  kind: 'troupe.shm-collectives';
  version: number;
  pid: number;
  fd: number;
  bytes: number;
  ranks: number;
  capacityBytes: number;
  broadcastCapacityBytes: number;
  id: string;
}

export interface RawCollectiveStats {
  allReduces: number;
  broadcastsSent: number;
  broadcastsReceived: number;
  bytesReduced: number;
  spinWaits: number;
  futexWaits: number;
}

export interface RawCollectives {
  shmCreate(ranks: number, capacityBytes: number, broadcastCapacityBytes: number): RawCollectiveHandle;
  shmAttach(descriptor: unknown, rank: number, spinMicros: number): RawCollectiveHandle;
  shmDescriptor(handle: RawCollectiveHandle): RawCollectiveDescriptor;
  shmRank(handle: RawCollectiveHandle): number;
  shmAllReduce(handle: RawCollectiveHandle, data: Float32Array, timeoutMs: number, segments?: number): void;
  shmAllReduceAsync(handle: RawCollectiveHandle, data: Float32Array, timeoutMs: number, segments?: number): Promise<Float32Array>;
  shmBroadcast(handle: RawCollectiveHandle, root: number, buffer: Uint8Array | undefined, timeoutMs: number): Uint8Array;
  shmBroadcastAsync(handle: RawCollectiveHandle, root: number, buffer: Uint8Array | undefined, timeoutMs: number): Promise<Uint8Array>;
  shmBumpEpoch(handle: RawCollectiveHandle): number;
  shmEpoch(handle: RawCollectiveHandle): number;
  shmStats(handle: RawCollectiveHandle): RawCollectiveStats;
  shmClose(handle: RawCollectiveHandle): void;
  linkCreate(ranks: number, rank: number, capacityBytes: number, onPart: (generation: number, part: Float32Array) => void): RawLinkHandle;
  linkPut(handle: RawLinkHandle, generation: number, fromRank: number, part: Float32Array): string;
  linkAbort(handle: RawLinkHandle): void;
  linkGeneration(handle: RawLinkHandle): number;
  linkStats(handle: RawLinkHandle): RawLinkStats;
  linkClose(handle: RawLinkHandle): void;
  linkAllReduceAsync(handle: RawLinkHandle, data: Float32Array, timeoutMs: number, segments?: number): Promise<Float32Array>;
}

/** An opaque native handle on a link group (native/src/collectives/link_group.h). */
export type RawLinkHandle = { readonly __troupeLinkHandle: unique symbol };

export interface RawLinkStats {
  allReduces: number;
  bytesReduced: number;
  bytesSent: number;
  bytesReceived: number;
}

export const RAW_COLLECTIVE_EXPORTS: readonly (keyof RawCollectives)[] = [
  'shmCreate',
  'shmAttach',
  'shmDescriptor',
  'shmRank',
  'shmAllReduce',
  'shmAllReduceAsync',
  'shmBroadcast',
  'shmBroadcastAsync',
  'shmBumpEpoch',
  'shmEpoch',
  'shmStats',
  'shmClose',
  'linkCreate',
  'linkPut',
  'linkAbort',
  'linkGeneration',
  'linkStats',
  'linkClose',
  'linkAllReduceAsync',
];

/** Picks the collective functions off the raw addon (bound, so they can be passed around). */
export function pickCollectives(raw: RawCollectives): RawCollectives {
  const out: Partial<Record<keyof RawCollectives, unknown>> = {};
  for (const name of RAW_COLLECTIVE_EXPORTS) out[name] = (raw[name] as (...a: unknown[]) => unknown).bind(raw);
  return out as RawCollectives;
}
