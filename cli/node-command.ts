// `troupe node --join HOST:PORT [--name NAME]`, the join token from
// --join-token-file FILE or $TROUPE_JOIN_TOKEN (or --token, which `ps` shows):
// runs a node agent. A lost link is rejoined under the same name with capped
// exponential back-off, for up to --rejoin-for seconds each time; the actors
// of the lost link are stopped first (the leader has already counted them
// dead); a connection that just closes or resets is a lost link too: only
// the leader's 'leave' (its shutdown) ends it on purpose. Exit code 0 when
// the leader let the node go or the agent was told to leave (SIGINT,
// SIGTERM), 1 when joining failed or was refused, 2 when the link was lost
// and could not be rejoined in time.
import { joinLeader, parseHostPort, RELEASED_BY_LEADER } from '../runtime/node/agent.js';
import { checkJoinToken, readJoinToken } from '../runtime/node/join-token.js';

export interface NodeCommandOptions {
  join: string;
  token?: string;
  joinTokenFile?: string;
  name?: string;
  /** Seconds to keep trying to (re)join an unreachable leader. */
  rejoinFor?: string;
}

export async function runNodeAgent(options: NodeCommandOptions): Promise<number> {
  let address;
  let token;
  try {
    address = parseHostPort(options.join);
    token = checkJoinToken(readJoinToken({ file: options.joinTokenFile, flag: options.token, env: process.env.TROUPE_JOIN_TOKEN || undefined }));
  } catch (error) {
    console.error(`troupe node: ${(error as Error).message}`);
    return 1;
  }
  const retryForMs = Math.max(0, Number(options.rejoinFor ?? 60) * 1000);
  let leaving = false;
  let leave = () => { leaving = true; };
  process.once('SIGINT', () => leave());
  process.once('SIGTERM', () => leave());
  for (let first = true; ; first = false) {
    let node;
    try {
      node = await joinLeader({ ...address, token, retryForMs, ...(options.name ? { name: options.name } : {}) });
    } catch (error) {
      console.error(`troupe node: ${(error as Error).message}`);
      return first ? 1 : 2;
    }
    console.log(`troupe node: ${first ? 'joined' : 'rejoined'} the leader at ${options.join} as "${node.name}"`);
    leave = () => { leaving = true; node.leave(); };
    if (leaving) node.leave();
    const why = await node.closed;
    console.log(`troupe node: disconnected (${why})`);
    await node.system.shutdown(1000);
    if (leaving || why === 'left' || why === RELEASED_BY_LEADER) return 0;
  }
}
