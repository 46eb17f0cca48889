#!/usr/bin/env node
// The `troupe` command line. Each subcommand lives with the folder that owns it;
// this file only wires them into one program.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('troupe')
  .description('Troupe: an LLM serving engine for Llama 3.x on an actor runtime')
  .version(pkg.version);

program
  .command('info')
  .description('print the CPU features the native addon detected and the kernel path it selected')
  .action(async () => {
    const { loadNative } = await import('../native/index.js');
    const native = loadNative();
    console.log(JSON.stringify({ cpu: native.cpuFeatures(), isa: native.selectedIsa() }, null, 2));
  });

await program.parseAsync(process.argv);
