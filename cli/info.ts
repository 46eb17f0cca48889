// `troupe info`: the CPU features the native addon may use and the kernel path it selected.
import type { Command } from 'commander';

export function defineInfoCommand(program: Command): void {
  program
    .command('info')
    .description('print the CPU features the native addon may use (detected, capped by TROUPE_CPU_FEATURES) and the kernel path it selected')
    .action(async () => {
      const { loadNative } = await import('../native/index.js');
      const native = loadNative();
      const cap = native.cpuFeatureCap();
      console.log(JSON.stringify({ cpu: native.cpuFeatures(), isa: native.selectedIsa(), available: native.availableIsas(), ...(cap ? { cap, detected: native.detectedCpuFeatures() } : {}) }, null, 2));
    });
}
