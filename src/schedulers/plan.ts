/**
 * A sampling plan: the whole sampler, precomputed as numbers, so the native loop needs no scheduler logic.
 *
 * The contract, for a plan `plan` and initial Gaussian latents (applyPlan in apply.ts is the reference):
 *
 *   x = latents * plan.initNoiseSigma;  x0prev = 0
 *   for each step s (index i):
 *     xin  = s.cin * x                                          model input
 *     out  = guided model output for (xin, s.timestep)          eps or v, per plan.predictionType
 *     epsilon:       eps = out;                         x0 = (xin - s.sigma * eps) / s.alpha
 *     v_prediction:  x0  = s.alpha * xin - s.sigma * out;  eps = s.sigma * xin + s.alpha * out
 *     if plan.clipSample !== null: x0 = clamp(x0, -plan.clipSample, plan.clipSample)
 *                                  (eps is NOT recomputed from the clipped x0: diffusers' DDIM/DDPM
 *                                   do not, with their pipelines' default use_clipped_model_output=False)
 *     noise = fresh N(0, I) draw          (only needed when s.cnoise !== 0)
 *     x = s.cx*x + s.ceps*eps + s.cx0*x0 + s.cx0prev*x0prev + s.cnoise*noise
 *     x0prev = x0
 *   result: x
 *
 * Every sampler Lethe plans (DDIM with any eta, DDPM, Euler, DPM-Solver++ 2M) fits this form; no extra
 * fields are needed.
 */
import type { PredictionType, SamplerName } from './config';

export interface SamplingStep {
  /**
   * The timestep given to the UNet (its time embedding). An integer for ddim, ddpm and dpmpp-2m; for euler
   * a float32-representable number that can be fractional (timestep_spacing "linspace").
   */
  timestep: number;
  /** Model-input scale: xin = cin * x (1, except Euler: 1 / sqrt(sigma_k^2 + 1)). */
  cin: number;
  /**
   * VP coefficients of this step, xin = alpha * x0 + sigma * eps, with alpha^2 + sigma^2 = 1 (up to
   * float32 rounding): sqrt(alphas_cumprod[t]) and sqrt(1 - alphas_cumprod[t]) for ddim/ddpm; derived from
   * the step's sigma_k (alpha = 1/sqrt(sigma_k^2 + 1), sigma = sigma_k * alpha) for euler and dpmpp-2m,
   * which for a fractional or interpolated timestep is not a table lookup.
   */
  alpha: number;
  sigma: number;
  /** Update: x_next = cx*x + ceps*eps + cx0*x0 + cx0prev*x0prev + cnoise*noise (x is the un-scaled sample). */
  cx: number;
  ceps: number;
  cx0: number;
  /** Weight of the previous step's x0 (multistep solvers; 0 at step 0 and for one-step samplers). */
  cx0prev: number;
  /** Standard deviation of the fresh N(0, I) noise added at this step (0: no noise is drawn). */
  cnoise: number;
}

export interface SamplingPlan {
  scheduler: SamplerName;
  /** What the model predicts: 'epsilon' (noise) or 'v_prediction' (v = alpha*eps - sigma*x0). */
  predictionType: PredictionType;
  /** Initial latents are N(0, I) * initNoiseSigma (1, except Euler: the largest sigma, or sqrt(max^2+1) for "leading"). */
  initNoiseSigma: number;
  /** Clamp x0 to [-clipSample, clipSample] at every step, or null for no clamp. */
  clipSample: number | null;
  steps: SamplingStep[];
}
