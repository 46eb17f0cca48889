// `troupe node --join HOST:PORT --token SECRET [--name NAME]`: runs a node
// agent until its leader goes away. Exit code 0 when the leader closed the
// connection, 1 when joining failed or was refused, 2 when the connection was
// lost (e.g. missed heartbeats).
import { joinLeader, parseHostPort } from '../runtime/node/agent.js';

export async function runNodeAgent(options: { join: string; token?: string; name?: string }): Promise<number> {
  let address;
  try {
    address = parseHostPort(options.join);
  } catch (error) {
    console.error(`troupe node: ${(error as Error).message}`);
    return 1;
  }
  const token = options.token ?? process.env.TROUPE_JOIN_TOKEN ?? '';
  if (!token) {
    console.error('troupe node: a join token is required: pass --token SECRET or set TROUPE_JOIN_TOKEN (the leader prints or is given it)');
    return 1;
  }
  try {
    const node = await joinLeader({ ...address, token, ...(options.name ? { name: options.name } : {}) });
    console.log(`troupe node: joined the leader at ${options.join} as "${node.name}"`);
    const stop = () => node.leave();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const why = await node.closed;
    console.log(`troupe node: disconnected (${why})`);
    return why === 'connection closed' || why === 'left' ? 0 : 2;
  } catch (error) {
    console.error(`troupe node: ${(error as Error).message}`);
    return 1;
  }
}
