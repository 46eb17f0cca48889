// The KV-cache manager actor: the physical side of the cache. The plan (how
// many blocks the budget buys) is made before the ranks start, since each rank
// allocates its pages when it loads; this actor reports it, answers usage
// (from the scheduler's block pool) and resets the prefix cache.
import { Actor, type ActorRef } from '../../runtime/index.js';
import type { KvCacheMessage } from '../messages/kv-cache.js';
import type { SchedulerActorStats, SchedulerMessage } from '../messages/scheduler.js';
import type { KvPlan } from './kv-plan.js';

export class KvCacheManager extends Actor<KvCacheMessage> {
  private scheduler!: ActorRef<SchedulerMessage>;

  constructor(private readonly plan: KvPlan, private readonly schedulerPath: string) {
    super();
  }

  override preStart(): void {
    this.scheduler = this.context.system.refFor(this.schedulerPath);
  }

  async receive(message: KvCacheMessage): Promise<void> {
    switch (message.type) {
      // The asks run beside the mailbox: a scheduler that is slow or restarting
      // makes the caller's ask time out, never this actor fail (or its queue wait).
      case 'usage':
        void this.scheduler.ask<SchedulerActorStats>((replyTo) => ({ type: 'stats', replyTo }), { timeoutMs: 30_000 }).then((stats) => message.replyTo.tell({
          plan: this.plan, usage: stats.kvUsage, running: stats.running, waiting: stats.waiting,
          prefixQueries: stats.prefixQueries, prefixHits: stats.prefixHits, preemptions: stats.preemptions,
        }), (error: Error) => console.warn(`[troupe] kv-cache: usage unavailable (${error.message})`));
        return;
      case 'reset-prefix-cache':
        void this.scheduler.ask<boolean>((replyTo) => ({ type: 'reset-prefix-cache', replyTo }), { timeoutMs: 30_000 })
          .then((done) => message.replyTo.tell(done), (error: Error) => console.warn(`[troupe] kv-cache: prefix cache not reset (${error.message})`));
        return;
    }
  }
}
