#!/usr/bin/env node
// The `troupe` command line: one program, one define*() per subcommand. A
// subcommand's file declares its flags with commander alone and loads what it
// runs (engine, gateway, benchmarks) only when invoked, so `troupe --help`
// loads nothing else.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { defineBenchCommand } from './bench.js';
import { defineEvalCommand } from './eval.js';
import { defineInfoCommand } from './info.js';
import { defineMakeModelCommand } from './make-model.js';
import { defineNodeCommand } from './node.js';
import { defineQuantizeCommand } from './quantize.js';
import { defineServeCommand } from './serve.js';
import { defineTopologyCommand } from './topology.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('troupe')
  .description('Troupe: an LLM serving engine for Llama 3.x on an actor runtime')
  .version(pkg.version);

defineInfoCommand(program);
defineNodeCommand(program);
defineEvalCommand(program);
defineMakeModelCommand(program);
defineQuantizeCommand(program);
defineTopologyCommand(program);
defineServeCommand(program);
defineBenchCommand(program);

await program.parseAsync(process.argv);
