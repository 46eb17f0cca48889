// The tensor groups of a rank group: one shared-memory collectives group per
// pipeline stage with tp > 1 (native/collectives.ts), created in the leader
// process, so ranks in threads and in child processes attach to it.
//
// It is the first child of the rank group (one_for_all): a rank asks it for
// its stage's descriptor in preStart. A group is unusable after any rank died
// (generations no longer agree), so every restart of the rank group makes
// fresh groups: this actor restarts with the ranks, and its postStop bumps
// the old groups' epochs, releasing any rank still waiting in a collective.
import { CollectiveGroup, type CollectiveGroupDescriptor } from '../../native/collectives.js';
import { Actor, type ActorRef } from '../../runtime/index.js';

export interface TensorGroupsOptions {
  /** Ranks per group (the tensor-parallel size). */
  tp: number;
  /** Stages whose ranks need a group (those on this machine). */
  stages: number[];
  capacityBytes: number;
}

export type TensorGroupsMessage = { type: 'descriptor'; stage: number; replyTo: ActorRef<CollectiveGroupDescriptor | { error: string }> };

export class TensorGroupsActor extends Actor<TensorGroupsMessage> {
  private readonly groups = new Map<number, CollectiveGroup>();

  constructor(private readonly options: TensorGroupsOptions) {
    super();
  }

  override preStart(): void {
    for (const stage of this.options.stages) {
      this.groups.set(stage, CollectiveGroup.create({ ranks: this.options.tp, capacityBytes: this.options.capacityBytes, broadcastCapacityBytes: 4096 }));
    }
  }

  receive(message: TensorGroupsMessage): void {
    const group = this.groups.get(message.stage);
    message.replyTo.tell(group ? group.descriptor : { error: `no tensor group for stage ${message.stage} (groups: ${[...this.groups.keys()].join(', ') || 'none'})` });
  }

  override postStop(): void {
    for (const group of this.groups.values()) {
      group.bumpEpoch();
      group.close();
    }
    this.groups.clear();
  }
}
