// A small seeded generator for the serving benchmark: dataset lengths and
// ids, and the gaps between request arrivals (gamma distributed with shape
// `burstiness`; 1 gives a Poisson process, as vLLM's --burstiness).

export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = (seed >>> 0) ^ 0x9e3779b9;
  }

  /** Uniform in [0, 1) (mulberry32). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Gamma(shape, scale) by Marsaglia and Tsang (shape < 1 boosted). */
  gamma(shape: number, scale: number): number {
    if (shape < 1) return this.gamma(shape + 1, scale) * Math.pow(1 - this.next(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const v = (1 + c * x) ** 3;
      if (v <= 0) continue;
      const u = 1 - this.next();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v * scale;
    }
  }
}

/**
 * Seconds to wait before each request: 0 for an infinite rate, else gamma
 * gaps with mean 1 / rate (exponential, i.e. Poisson arrivals, when burstiness = 1).
 */
export function arrivalGaps(count: number, requestRate: number, burstiness: number, random: SeededRandom): number[] {
  if (!Number.isFinite(requestRate)) return new Array<number>(count).fill(0);
  const scale = 1 / (requestRate * burstiness);
  return Array.from({ length: count }, () => random.gamma(burstiness, scale));
}
