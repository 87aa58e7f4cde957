/**
 * Euler (Karras et al. 2022, Algorithm 2 without churn), as diffusers 0.35.2's EulerDiscreteScheduler
 * with interpolation_type "linear":
 *
 *   sigma_k  = interp(timestep_k, 0..T-1, sqrt((1 - a) / a))     (timesteps may be fractional)
 *   x        = latents * init_noise_sigma,  init_noise_sigma = max sigma ("leading": sqrt(max^2 + 1))
 *   xin      = x / sqrt(sigma_k^2 + 1)                           (scale_model_input)
 *   x_next   = x + (sigma_{k+1} - sigma_k) * eps                  (eps = (x - x0) / sigma_k)
 *            = (sigma_{k+1}/sigma_k) x + (1 - sigma_{k+1}/sigma_k) x0   (the form used for v_prediction)
 *
 * x is the variance-exploding sample x0 + sigma*eps; in VP terms xin = alpha*x0 + sigma_vp*eps with
 * alpha = 1/sqrt(sigma^2+1) = cin, sigma_vp = sigma*alpha, which the plan's alpha/sigma carry.
 * The last sigma is 0 (final_sigmas_type "zero") or sqrt((1 - a_0) / a_0) ("sigma_min").
 */
import type { NoiseSchedule } from './betas';
import { sigmasFromAlphasCumprod } from './betas';
import type { ResolvedSchedulerConfig } from './config';
import { f32, npInterpIndex } from './numeric';
import type { SamplingPlan, SamplingStep } from './plan';
import { eulerTimesteps, checkStepCount } from './timesteps';

export function eulerPlan(cfg: ResolvedSchedulerConfig, sched: NoiseSchedule, numSteps: number): SamplingPlan {
  const ac = Float64Array.from(sched.alphasCumprod);
  // Close to 0 without being 0 so the first sigma is not inf (diffusers: fp16's smallest subnormal).
  if (cfg.rescaleBetasZeroSnr) ac[ac.length - 1] = 2 ** -24;
  const table = sigmasFromAlphasCumprod(ac);
  const ts = eulerTimesteps(cfg, numSteps);
  checkStepCount(ts, numSteps, 'euler', cfg.timestepSpacing);
  const sigmas = ts.map((t) => f32(npInterpIndex(t, table)));
  sigmas.push(cfg.finalSigmasType === 'zero' ? 0 : table[0]);
  const maxSigma = Math.max(...sigmas);
  const initNoiseSigma = cfg.timestepSpacing === 'leading' ? f32(Math.sqrt(f32(f32(maxSigma * maxSigma) + 1))) : maxSigma;
  const v = cfg.predictionType === 'v_prediction';
  const steps: SamplingStep[] = ts.map((t, k) => {
    const s = sigmas[k];
    const d = f32(Math.sqrt(f32(f32(s * s) + 1)));
    const dt = f32(sigmas[k + 1] - s);
    return {
      timestep: t,
      cin: 1 / d,
      alpha: 1 / d,
      sigma: s / d,
      // x + dt * (x - x0) / s, written the way diffusers evaluates it for each prediction type: with eps
      // directly (x0 = x - s*eps), or through x0 for v (x0 = x/(s^2+1) - s/sqrt(s^2+1) * v), which keeps
      // the x/(s^2+1) term that x + dt*eps would lose to rounding when sigma is huge (zero terminal SNR).
      cx: v ? 1 + dt / s : 1,
      ceps: v ? 0 : dt,
      cx0: v ? -dt / s : 0,
      cx0prev: 0,
      cnoise: 0,
    };
  });
  return { scheduler: 'euler', predictionType: cfg.predictionType, initNoiseSigma, clipSample: null, steps };
}
