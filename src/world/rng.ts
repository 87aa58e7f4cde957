/**
 * A small seeded PRNG (mulberry32) and a seed mixer. Integer arithmetic only (Math.imul and
 * unsigned shifts), so the same seed gives the same stream on every platform and Node version.
 */

/** A 32-bit integer hash (the "lowbias32" finaliser): good avalanche, cheap. */
export function hash32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Folds any safe integer (including negatives and values above 2^32) into a 32-bit seed. */
export function seed32(seed: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return hash32(lo ^ hash32(hi ^ 0x9e3779b9));
}

/**
 * The seed of item `index` of a stream seeded by `seed`: items are independent of one another,
 * so a dataset of n samples is a prefix of one of n + k samples with the same seed.
 */
export function mixSeed(seed: number, index: number): number {
  const s = seed32(seed);
  const i = index >>> 0;
  const ih = Math.floor(index / 4294967296) >>> 0;
  return hash32(s ^ hash32(Math.imul(i, 0x9e3779b1) ^ hash32(ih + 0x632be5ab)));
}

export class Rng {
  private a: number;

  constructor(seed: number) {
    this.a = seed32(seed);
  }

  /** A float in [0, 1) with 32 random bits. */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A float uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** An integer uniform in [lo, hi], both ends included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}
