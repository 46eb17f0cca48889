// The child side of a link: runs an ActorSystem whose unknown paths go to the
// parent, spawns the actors the parent asks for, and reports their ends. The
// same code runs in a worker thread, a child process and a node agent.
import type { ActorSpec } from './actor.js';
import { toErrorInfo } from './errors.js';
import type { ChildBoot, HostedActorBoot, Link, ToChild } from './host-protocol.js';
import { remoteActorModule } from './node/actor-registry.js';
import { ActorSystem } from './system.js';

export interface ChildHostOptions {
  /** Called when the last hosted actor stopped (threads and processes exit then). */
  onIdle?: () => void;
}

/** A link this side can listen on: a worker's parentPort or a StreamPort. */
export type ListeningLink = Link & { on(event: 'message', listener: (message: ToChild) => void): unknown };

export function runChildHost(link: ListeningLink, boot: ChildBoot, options: ChildHostOptions = {}): ActorSystem {
  const system = new ActorSystem({ debugSerialize: boot.debugSerialize, ...(boot.peer ? { parentCodec: 'peer' as const } : {}) }, link, boot.systemId);
  let hosted = 0;

  async function spawn(actor: HostedActorBoot): Promise<void> {
    hosted++;
    try {
      await system.spawnHosted(actor.path, actor.incarnation, hostedSpec(actor, boot.peer === true));
    } catch (error) {
      system.notifyParent({ t: 'start-failed', path: actor.path, error: toErrorInfo(error) });
      if (--hosted === 0) options.onIdle?.();
      return;
    }
    void system.watch(system.refFor(actor.path)).then((reason) => {
      system.notifyParent({ t: 'stopped', path: actor.path, reason });
      if (--hosted === 0) options.onIdle?.();
    });
    system.notifyParent({ t: 'started', path: actor.path });
  }

  link.on('message', (message: ToChild) => {
    switch (message.t) {
      case 'env':
        for (const frame of message.frames) system.routeFrame(frame, 'parent');
        return;
      case 'spawn':
        void spawn(message.boot);
        return;
      case 'stop':
        void system.stop(system.refFor(message.path));
        return;
      case 'ping':
      case 'leave': // a node agent's own business (node/agent.ts)
        return;
    }
  });
  return system;
}

/**
 * What to construct for a spawn. A node resolves a registry name against its
 * own install and never imports a module URL its peer sent.
 */
function hostedSpec(actor: HostedActorBoot, peer: boolean): ActorSpec<unknown> {
  const { args, mailbox } = actor.spec;
  if (!Array.isArray(args)) throw new TypeError(`spawn of ${String(actor.path)}: args must be an array`);
  if (!peer) return { module: actor.spec.module!, export: actor.spec.export!, args, mailbox, placement: 'local' };
  if (actor.spec.module !== undefined) throw new TypeError(`spawn of ${String(actor.path)}: a node runs actors by registry name, never by module URL`);
  return { ...remoteActorModule(actor.spec.actor), args, mailbox: typeof mailbox === 'object' && mailbox ? mailbox : {}, placement: 'local' };
}
