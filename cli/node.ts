// `troupe node`: the flags of a node agent; node-command.ts runs it.
import type { Command } from 'commander';
import type { NodeCommandOptions } from './node-command.js';

export function defineNodeCommand(program: Command): void {
  program
    .command('node')
    .description('join a leader as a node agent and host the actors it places here')
    .requiredOption('--join <host:port>', "the leader's node listener")
    .option('--join-token-file <file>', 'file whose first line is the join token (default: $TROUPE_JOIN_TOKEN)')
    .option('--token <secret>', 'the join token on the command line (visible in ps; prefer --join-token-file)')
    .option('--name <name>', 'this node\'s name in topology files (default: hostname-pid)')
    .option('--rejoin-for <seconds>', 'keep trying to (re)join an unreachable leader this long', '60')
    .action(async (options: NodeCommandOptions) => {
      const { runNodeAgent } = await import('./node-command.js');
      process.exit(await runNodeAgent(options));
    });
}
