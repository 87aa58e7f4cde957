/**
 * DDIM (Song et al. 2021), as diffusers 0.35.2's DDIMScheduler with the StableDiffusionPipeline loop:
 *
 *   prev_t = t - T // N                  (for every spacing, as diffusers does, even trailing / linspace)
 *   a_prev = alphas_cumprod[prev_t], or (prev_t < 0) 1 if set_alpha_to_one else alphas_cumprod[0]
 *   std    = eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
 *   x_prev = sqrt(a_prev) * x0 + sqrt(1 - a_prev - std^2) * eps + std * noise
 *
 * Scalars are rounded to float32 where diffusers computes them on float32 tensors.
 */
import { ErrorCodes, LetheError } from '../errors';
import type { NoiseSchedule } from './betas';
import type { ResolvedSchedulerConfig } from './config';
import { f32 } from './numeric';
import type { SamplingPlan, SamplingStep } from './plan';
import { ddimTimesteps, checkStepCount } from './timesteps';

export function ddimPlan(cfg: ResolvedSchedulerConfig, sched: NoiseSchedule, numSteps: number, eta = 0): SamplingPlan {
  const T = cfg.numTrainTimesteps;
  const ac = sched.alphasCumprod;
  const finalAlphaCumprod = cfg.setAlphaToOne ? 1 : ac[0];
  const ratio = Math.floor(T / numSteps);
  const ts = ddimTimesteps(cfg, numSteps);
  checkStepCount(ts, numSteps, 'ddim', cfg.timestepSpacing);
  const steps: SamplingStep[] = ts.map((t) => {
    if (t < 0 || t >= T) {
      throw new LetheError(
        ErrorCodes.BAD_ARGUMENT,
        `ddim: ${numSteps} steps with timestep_spacing "${cfg.timestepSpacing}" and steps_offset ${cfg.stepsOffset} give timestep ${t}, outside 0..${T - 1}`,
      );
    }
    const prev = t - ratio;
    const a = ac[t];
    const ap = prev >= 0 ? ac[prev] : finalAlphaCumprod;
    const bt = f32(1 - a);
    const variance = f32(f32(f32(1 - ap) / bt) * f32(1 - f32(a / ap)));
    const std = f32(eta * f32(Math.sqrt(variance)));
    return {
      timestep: t,
      cin: 1,
      alpha: f32(Math.sqrt(a)),
      sigma: f32(Math.sqrt(bt)),
      cx: 0,
      ceps: f32(Math.sqrt(f32(f32(1 - ap) - f32(std * std)))),
      cx0: f32(Math.sqrt(ap)),
      cx0prev: 0,
      cnoise: eta > 0 ? std : 0,
    };
  });
  return {
    scheduler: 'ddim',
    predictionType: cfg.predictionType,
    initNoiseSigma: 1,
    clipSample: cfg.clipSample ? cfg.clipSampleRange : null,
    steps,
  };
}
