/**
 * Beta schedules -> alphas_cumprod, as diffusers 0.35.2 builds them in its schedulers' __init__.
 *
 * The math is float64, but every table is rounded to float32 where diffusers stores a float32 torch
 * tensor: betas (torch.linspace in float32, reproduced exactly), alphas = 1 - betas, and alphas_cumprod
 * (torch.cumprod on float32 CPU tensors accumulates in double and rounds each output). The tables then
 * equal diffusers' bit for bit (with rescale_betas_zero_snr, a few values can be 1 float32 ulp apart:
 * torch's vectorized float32 sqrt is not always correctly rounded). Plain float64 math would be up to 9e-7 (scaled_linear) and 1.3e-5
 * (squaredcos_cap_v2, where 1 - beta is small at the end and float32's rounding of beta = 0.999 matters)
 * relative off.
 */
import type { BetaSchedule } from './config';
import { f32 } from './numeric';

export interface BetaScheduleSpec {
  numTrainTimesteps: number;
  betaSchedule: BetaSchedule | 'trained_betas';
  betaStart: number;
  betaEnd: number;
  /** Used instead of betaSchedule when given (diffusers' `trained_betas`). */
  trainedBetas?: readonly number[] | null;
  /** diffusers' `rescale_betas_zero_snr` (Lin et al. 2023, Algorithm 1). */
  rescaleBetasZeroSnr?: boolean;
}

export interface NoiseSchedule {
  numTrainTimesteps: number;
  /** beta_t, t = 0..T-1 (float32 values). */
  betas: Float64Array;
  /** 1 - beta_t (float32 values). */
  alphas: Float64Array;
  /** prod_{s<=t} (1 - beta_s) (float32 values): the VP signal level, x_t = sqrt(a)*x0 + sqrt(1-a)*eps. */
  alphasCumprod: Float64Array;
}

/**
 * torch.linspace(start, end, steps, dtype=torch.float32) on the CPU, bit for bit: endpoints and step are
 * float32, the first half counts up from start and the second half down from end, each value a fused
 * multiply-add rounded once to float32 (exact in double, since i * step needs at most 34 bits).
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float64Array {
  const out = new Float64Array(steps);
  const s = f32(start);
  const e = f32(end);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = f32(i < halfway ? s + i * step : e - (steps - i - 1) * step);
  return out;
}

/** diffusers' betas_for_alpha_bar (the "squaredcos_cap_v2" / Glide cosine schedule), float64. */
export function betasForAlphaBar(numDiffusionTimesteps: number, maxBeta = 0.999): Float64Array {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const betas = new Float64Array(numDiffusionTimesteps);
  for (let i = 0; i < numDiffusionTimesteps; i++) {
    const t1 = i / numDiffusionTimesteps;
    const t2 = (i + 1) / numDiffusionTimesteps;
    betas[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return betas;
}

/** cumprod accumulated in double, each output rounded to float32 (torch.cumprod on a float32 CPU tensor). */
function cumprodF32(alphas: Float64Array): Float64Array {
  const out = new Float64Array(alphas.length);
  let acc = 1;
  for (let i = 0; i < alphas.length; i++) {
    acc *= alphas[i];
    out[i] = f32(acc);
  }
  return out;
}

/**
 * diffusers' rescale_zero_terminal_snr on float32 betas, every operation rounded to float32 like the
 * torch code: shifts and scales sqrt(alphas_cumprod) so that the last one is exactly 0.
 */
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const n = betas.length;
  const ac = cumprodF32(betas.map((b) => f32(1 - b)));
  const sq = ac.map((a) => f32(Math.sqrt(a)));
  const s0 = sq[0];
  const sT = sq[n - 1];
  const scale = f32(s0 / f32(s0 - sT));
  const abar = sq.map((s) => {
    const v = f32(f32(s - sT) * scale);
    return f32(v * v);
  });
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const alpha = i === 0 ? abar[0] : f32(abar[i] / abar[i - 1]);
    out[i] = f32(1 - alpha);
  }
  return out;
}

/** Betas and alphas_cumprod of a diffusers scheduler config (float32 values, see the file comment). */
export function makeNoiseSchedule(spec: BetaScheduleSpec): NoiseSchedule {
  const T = spec.numTrainTimesteps;
  let betas: Float64Array;
  if (spec.trainedBetas != null) {
    betas = Float64Array.from(spec.trainedBetas, f32);
  } else if (spec.betaSchedule === 'linear') {
    betas = torchLinspaceF32(spec.betaStart, spec.betaEnd, T);
  } else if (spec.betaSchedule === 'scaled_linear') {
    betas = torchLinspaceF32(spec.betaStart ** 0.5, spec.betaEnd ** 0.5, T).map((r) => f32(r * r));
  } else if (spec.betaSchedule === 'squaredcos_cap_v2') {
    betas = betasForAlphaBar(T).map(f32);
  } else {
    throw new Error(`unknown beta schedule ${String(spec.betaSchedule)}`);
  }
  if (betas.length !== T) throw new Error(`expected ${T} betas, got ${betas.length}`);
  if (spec.rescaleBetasZeroSnr) betas = rescaleZeroTerminalSnr(betas);
  const alphas = betas.map((b) => f32(1 - b));
  return { numTrainTimesteps: T, betas, alphas, alphasCumprod: cumprodF32(alphas) };
}

/**
 * The variance-exploding sigmas of a VP schedule, sigma_t = sqrt((1 - a_t) / a_t), as the float32 table
 * EulerDiscreteScheduler and DPMSolverMultistepScheduler compute (index t = 0..T-1, increasing).
 */
export function sigmasFromAlphasCumprod(alphasCumprod: ArrayLike<number>): Float64Array {
  return Float64Array.from(alphasCumprod, (a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/**
 * VP (alpha, sigma) of a VE sigma: alpha = 1 / sqrt(sigma^2 + 1), sigma_vp = sigma * alpha, in float32
 * like DPMSolverMultistepScheduler._sigma_to_alpha_sigma_t.
 */
export function vpFromSigma(sigma: number): { alpha: number; sigma: number } {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  return { alpha, sigma: f32(sigma * alpha) };
}
