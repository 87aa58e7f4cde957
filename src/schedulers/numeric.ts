/**
 * The few numpy / torch numerics the schedulers need, reproduced operation for operation so that plans
 * match diffusers 0.35.2 to the last bit where that is cheap:
 *
 * - diffusers keeps its tables (betas, alphas_cumprod, sigmas) and the per-step scalars it computes from
 *   them in float32 torch tensors. `f32` (Math.fround) marks every place where a float32 result is stored,
 *   so a chain like `f32(Math.sqrt(f32(1 - a)))` is exactly torch's `(1 - a) ** 0.5` on a float32 tensor
 *   (IEEE +, -, *, /, sqrt in double then rounded to float32 equal the float32 operation).
 * - timestep spacings come from numpy (`linspace`, float `arange`, `round` = round-half-to-even).
 */

/** Round to the nearest float32 (the value torch stores in a float32 tensor). */
export const f32 = Math.fround;

/** numpy's round / rint: round half to even (np.round(2.5) == 2). */
export function rint(x: number): number {
  const fl = Math.floor(x);
  const d = x - fl;
  if (d < 0.5) return fl;
  if (d > 0.5) return fl + 1;
  return fl % 2 === 0 ? fl : fl + 1;
}

/** np.linspace(start, stop, num) (endpoint=True), float64, same arithmetic as numpy 2.x. */
export function npLinspace(start: number, stop: number, num: number): number[] {
  const out = new Array<number>(num);
  const div = num - 1;
  const delta = stop - start;
  if (div > 0) {
    const step = delta / div;
    if (step === 0) {
      for (let i = 0; i < num; i++) out[i] = (i / div) * delta + start;
    } else {
      for (let i = 0; i < num; i++) out[i] = i * step + start;
    }
    out[num - 1] = stop;
  } else {
    for (let i = 0; i < num; i++) out[i] = i * delta + start;
  }
  return out;
}

/**
 * np.arange(start, stop, step) with a float step, as numpy computes it: length ceil((stop - start) / step),
 * element 1 is start + step, then element i is start + i * ((start + step) - start).
 */
export function npArange(start: number, stop: number, step: number): number[] {
  const len = Math.ceil((stop - start) / step);
  if (!(len > 0)) return [];
  const out = new Array<number>(len);
  out[0] = start;
  if (len === 1) return out;
  const second = start + step;
  out[1] = second;
  const delta = second - start;
  for (let i = 2; i < len; i++) out[i] = start + i * delta;
  return out;
}

/**
 * np.interp(x, arange(fp.length), fp) for the integer grid 0..n-1: clamps outside, returns fp[j] exactly
 * on grid points, else slope * (x - j) + fp[j].
 */
export function npInterpIndex(x: number, fp: ArrayLike<number>): number {
  const n = fp.length;
  if (Number.isNaN(x)) return x;
  if (x <= 0) return fp[0];
  if (x >= n - 1) return fp[n - 1];
  const j = Math.floor(x);
  if (x === j) return fp[j];
  const slope = (fp[j + 1] - fp[j]) / (j + 1 - j);
  return slope * (x - j) + fp[j];
}

/** torch.searchsorted(sorted ascending, value) (side='left'): first index with sorted[i] >= value. */
export function searchSortedLeft(sorted: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
