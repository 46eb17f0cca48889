// This machine's limits for the ISA a benchmark runs, measured before and after
// its figures in the same run (DESIGN.md, "Performance targets and how they are
// measured"; native/src/probes/machine_limits.h has the probes):
//   read bandwidth   every ISA (the widest loads the CPU runs)
//   compute peak     the instruction the ISA's prefill GEMM is made of: fp32 FMA
//                    on avx2 / avx512, bf16 dot on avx512bf16, AMX tiles on amx
// The larger of each pair is the limit used; all are printed and recorded.
// Before the figures, the peak of every other ISA the CPU runs is measured once
// too (printed and recorded as `peaksByIsa`), so one run shows each path's limit.
import { loadNative, type Isa } from '../native/index.js';
import { loadProbes, type PeakProbe } from '../native/probes.js';

export interface LimitsRecord {
  isa: Isa;
  readBandwidthBytesPerS: number;
  readBandwidthBefore: number;
  readBandwidthAfter: number;
  peakFlops: number;
  peakBefore: number;
  peakAfter: number;
  peakInstruction: string;
  peakKind: PeakProbe['kind'];
  /** Every ISA the CPU runs: its peak probe, measured once before the figures. */
  peaksByIsa: PeakProbe[];
}

export class Limits {
  private readonly probes = loadProbes();
  private bwBefore = 0;
  private pkBefore: PeakProbe | undefined;
  private readonly peaksByIsa: PeakProbe[] = [];

  constructor(readonly isa: Isa, readonly threads: number, readonly bandwidthBytes = 2 * 2 ** 30) {}

  private measure(): { bw: number; peak: PeakProbe } {
    const bw = this.probes.measureReadBandwidth(this.bandwidthBytes, this.threads, 5);
    const peak = this.probes.measurePeak(this.isa, this.threads, 1.0);
    return { bw, peak };
  }

  before(): void {
    const { bw, peak } = this.measure();
    this.bwBefore = bw;
    this.pkBefore = peak;
    console.log(`limits before (${this.threads} threads, isa ${this.isa}): read bandwidth ${(bw / 1e9).toFixed(1)} GB/s; ${peak.kind} peak ${(peak.flops / 1e9).toFixed(0)} GFLOP/s (${peak.instruction})`);
    for (const isa of loadNative().availableIsas()) {
      const p = isa === this.isa ? peak : this.probes.measurePeak(isa, this.threads, 0.5);
      this.peaksByIsa.push(p);
    }
    console.log(`peaks of every ISA here: ${this.peaksByIsa.map((p) => `${p.isa} ${(p.flops / 1e9).toFixed(0)} GFLOP/s (${p.kind})`).join(', ')}`);
  }

  /** Measures again and returns the limits used (the larger of before and after). */
  after(): LimitsRecord {
    const { bw, peak } = this.measure();
    const before = this.pkBefore!;
    const record: LimitsRecord = {
      isa: this.isa,
      readBandwidthBytesPerS: Math.max(this.bwBefore, bw),
      readBandwidthBefore: this.bwBefore,
      readBandwidthAfter: bw,
      peakFlops: Math.max(before.flops, peak.flops),
      peakBefore: before.flops,
      peakAfter: peak.flops,
      peakInstruction: peak.instruction,
      peakKind: peak.kind,
      peaksByIsa: this.peaksByIsa,
    };
    console.log(`limits after: read bandwidth ${(bw / 1e9).toFixed(1)} GB/s; ${peak.kind} peak ${(peak.flops / 1e9).toFixed(0)} GFLOP/s`);
    console.log(`limits used: ${(record.readBandwidthBytesPerS / 1e9).toFixed(1)} GB/s, ${(record.peakFlops / 1e9).toFixed(0)} GFLOP/s ${peak.kind} (the larger of each)`);
    return record;
  }
}
