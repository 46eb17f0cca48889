// Preloaded (NODE_OPTIONS=--require) into the emulated ARM64 Node of
// scripts/test-arm64.sh. The host has no binfmt_misc entry for ARM64 ELF
// files, so a child started with process.execPath (ava's workers, fork(),
// execFile(process.execPath, ...)) would fail to exec; this runs it under the
// same qemu-aarch64 with the same sysroot and CPU model instead. Children
// inherit NODE_OPTIONS, so theirs are redirected too.
'use strict';
const cp = require('node:child_process');
const { syncBuiltinESMExports } = require('node:module');

const qemu = process.env.TROUPE_QEMU;
const sysroot = process.env.TROUPE_QEMU_SYSROOT;
const cpu = process.env.TROUPE_QEMU_CPU;
if (!qemu || !sysroot || !cpu) throw new Error('qemu-child.cjs needs TROUPE_QEMU, TROUPE_QEMU_SYSROOT and TROUPE_QEMU_CPU');
const node = process.execPath;
const prefix = ['-L', sysroot, '-cpu', cpu, node];
const isNode = (file) => file === node || file === 'node';

// Every asynchronous spawn (spawn, fork, exec, execFile) ends here: options.file is the
// program, options.args its argv (argv[0] first).
const spawn = cp.ChildProcess.prototype.spawn;
cp.ChildProcess.prototype.spawn = function spawnUnderQemu(options) {
  if (options && isNode(options.file)) {
    options = { ...options, file: qemu, args: [qemu, ...prefix, ...options.args.slice(1)] };
  }
  return spawn.call(this, options);
};

const spawnSync = cp.spawnSync;
cp.spawnSync = function spawnSyncUnderQemu(file, args, options) {
  if (isNode(file)) {
    if (!Array.isArray(args)) return spawnSync(qemu, prefix, args);
    return spawnSync(qemu, [...prefix, ...args], options);
  }
  return spawnSync(file, args, options);
};
const execFileSync = cp.execFileSync;
cp.execFileSync = function execFileSyncUnderQemu(file, args, options) {
  if (isNode(file)) {
    if (!Array.isArray(args)) return execFileSync(qemu, prefix, args);
    return execFileSync(qemu, [...prefix, ...args], options);
  }
  return execFileSync(file, args, options);
};
syncBuiltinESMExports();
