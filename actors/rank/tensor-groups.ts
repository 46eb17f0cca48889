// The tensor groups of a rank group: one per pipeline stage with tp > 1.
//   stage on this machine     a shared-memory collectives group
//                             (native/collectives.ts), created in the leader
//                             process, so ranks in threads and in child
//                             processes attach to it;
//   stage with ranks on nodes a link group: each rank makes its own native
//                             link (native/link-collective.ts) and the
//                             vectors travel rank to rank over the node links
//                             (tensor-link.ts); this actor only names the
//                             group's incarnation, so a vector of an earlier
//                             one is never folded in.
//
// It is the first child of the rank group (one_for_all): a rank asks it for
// its stage's descriptor in preStart. A group is unusable after any rank died
// (generations no longer agree), so every restart of the rank group makes
// fresh groups: this actor restarts with the ranks, and its postStop bumps
// the old groups' epochs, releasing any rank still waiting in a collective.
import { randomBytes } from 'node:crypto';
import { CollectiveGroup, type CollectiveGroupDescriptor } from '../../native/collectives.js';
import { Actor, type ActorRef } from '../../runtime/index.js';

export const LINK_GROUP_KIND = 'troupe.link-collectives';

/** A tensor group across nodes: which incarnation, and the largest vector. */
export interface LinkGroupDescriptor {
  kind: typeof LINK_GROUP_KIND;
  stage: number;
  id: string;
  ranks: number;
  capacityBytes: number;
}

export function isLinkGroupDescriptor(value: unknown): value is LinkGroupDescriptor {
  const d = value as Partial<LinkGroupDescriptor> | null;
  return typeof d === 'object' && d !== null && d.kind === LINK_GROUP_KIND && typeof d.id === 'string' &&
    Number.isSafeInteger(d.ranks) && Number.isSafeInteger(d.capacityBytes);
}

export interface TensorGroupsOptions {
  /** Ranks per group (the tensor-parallel size). */
  tp: number;
  /** Stages whose ranks all run on this machine: shared memory. */
  stages: number[];
  /** Stages with ranks on nodes: link groups. */
  linkStages?: number[];
  capacityBytes: number;
}

export type TensorGroupDescriptor = CollectiveGroupDescriptor | LinkGroupDescriptor;

export type TensorGroupsMessage = { type: 'descriptor'; stage: number; replyTo: ActorRef<TensorGroupDescriptor | { error: string }> };

export class TensorGroupsActor extends Actor<TensorGroupsMessage> {
  private readonly groups = new Map<number, CollectiveGroup>();
  private readonly links = new Map<number, LinkGroupDescriptor>();

  constructor(private readonly options: TensorGroupsOptions) {
    super();
  }

  override preStart(): void {
    for (const stage of this.options.stages) {
      this.groups.set(stage, CollectiveGroup.create({ ranks: this.options.tp, capacityBytes: this.options.capacityBytes, broadcastCapacityBytes: 4096 }));
    }
    for (const stage of this.options.linkStages ?? []) {
      this.links.set(stage, { kind: LINK_GROUP_KIND, stage, id: randomBytes(12).toString('hex'), ranks: this.options.tp, capacityBytes: this.options.capacityBytes });
    }
  }

  receive(message: TensorGroupsMessage): void {
    const group = this.groups.get(message.stage)?.descriptor ?? this.links.get(message.stage);
    const known = [...this.groups.keys(), ...this.links.keys()].sort((a, b) => a - b);
    message.replyTo.tell(group ?? { error: `no tensor group for stage ${message.stage} (groups: ${known.join(', ') || 'none'})` });
  }

  override postStop(): void {
    for (const group of this.groups.values()) {
      group.bumpEpoch();
      group.close();
    }
    this.groups.clear();
  }
}
