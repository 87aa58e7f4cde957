/**
 * applyPlan: the reference implementation of the sampling-plan contract (see plan.ts), in float64.
 * The native loop does the same with tensors and classifier-free guidance; tests use this one.
 */
import { ErrorCodes, LetheError } from '../errors';
import type { SamplingPlan } from './plan';

export type FloatArray = Float32Array | Float64Array;

/** The (guided) model: eps or v for model input `xin` at `timestep`. */
export type PlanModel = (xin: Float64Array, timestep: number, stepIndex: number) => ArrayLike<number>;

/** Fresh N(0, I) noise for a step; called only for steps with cnoise !== 0. */
export type PlanNoise = (stepIndex: number) => ArrayLike<number>;

export interface ApplyPlanOptions {
  /**
   * Round the carried sample x to float32 at the start of every step, as a float32 loop does (and as
   * diffusers' Euler and DPM-Solver step() do: they cast the sample to float32 even for float64 latents).
   * Default false: everything in float64.
   */
  sampleFloat32?: boolean;
  /** Called after each step with the new sample and that step's x0 (for tracing / previews). */
  onStep?: (stepIndex: number, x: Float64Array, x0: Float64Array) => void;
}

export function applyPlan(
  plan: SamplingPlan,
  latents: FloatArray | ArrayLike<number>,
  model: PlanModel,
  noise?: PlanNoise,
  options: ApplyPlanOptions = {},
): Float64Array {
  const n = latents.length;
  const eps = new Float64Array(n);
  let x0 = new Float64Array(n);
  let x0prev = new Float64Array(n);
  const xin = new Float64Array(n);
  let x = new Float64Array(n);
  for (let j = 0; j < n; j++) x[j] = latents[j] * plan.initNoiseSigma;
  const clip = plan.clipSample;
  const v = plan.predictionType === 'v_prediction';
  plan.steps.forEach((s, i) => {
    if (options.sampleFloat32) for (let j = 0; j < n; j++) x[j] = Math.fround(x[j]);
    for (let j = 0; j < n; j++) xin[j] = s.cin * x[j];
    const out = model(xin, s.timestep, i);
    if (out.length !== n) {
      throw new LetheError(ErrorCodes.SHAPE_MISMATCH, `applyPlan: model returned ${out.length} values at step ${i}, expected ${n}`);
    }
    for (let j = 0; j < n; j++) {
      if (v) {
        x0[j] = s.alpha * xin[j] - s.sigma * out[j];
        eps[j] = s.sigma * xin[j] + s.alpha * out[j];
      } else {
        eps[j] = out[j];
        x0[j] = (xin[j] - s.sigma * out[j]) / s.alpha;
      }
      if (clip !== null) x0[j] = Math.min(Math.max(x0[j], -clip), clip);
    }
    let z: ArrayLike<number> | null = null;
    if (s.cnoise !== 0) {
      if (!noise) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `applyPlan: step ${i} adds noise but no noise source was given`);
      z = noise(i);
      if (z.length !== n) {
        throw new LetheError(ErrorCodes.SHAPE_MISMATCH, `applyPlan: noise for step ${i} has ${z.length} values, expected ${n}`);
      }
    }
    const next = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let y = s.cx * x[j] + s.ceps * eps[j] + s.cx0 * x0[j] + s.cx0prev * x0prev[j];
      if (z) y += s.cnoise * z[j];
      next[j] = y;
    }
    x = next;
    options.onStep?.(i, x, x0);
    [x0prev, x0] = [x0, x0prev];
  });
  return x;
}
