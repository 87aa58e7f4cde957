/**
 * DDPM ancestral sampling (Ho et al. 2020), as diffusers 0.35.2's DDPMScheduler:
 *
 *   prev_t  = the next timestep of the schedule (-1 after the last)
 *   a_prev  = alphas_cumprod[prev_t], or 1 when prev_t < 0
 *   alpha_t = a_t / a_prev,  beta_t = 1 - alpha_t
 *   x_prev  = sqrt(a_prev) * beta_t / (1 - a_t) * x0  +  sqrt(alpha_t) * (1 - a_prev) / (1 - a_t) * x_t
 *             + std * noise                              (only when t > 0)
 *   std     = fixed_small / fixed_small_log: sqrt(max((1 - a_prev) / (1 - a_t) * beta_t, 1e-20))
 *             fixed_large:                   sqrt(beta_t)
 *
 * Scalars are rounded to float32 where diffusers computes them on float32 tensors.
 */
import { ErrorCodes, LetheError } from '../errors';
import type { NoiseSchedule } from './betas';
import type { ResolvedSchedulerConfig } from './config';
import { f32 } from './numeric';
import type { SamplingPlan, SamplingStep } from './plan';
import { ddimTimesteps, checkStepCount } from './timesteps';

export function ddpmPlan(cfg: ResolvedSchedulerConfig, sched: NoiseSchedule, numSteps: number): SamplingPlan {
  const T = cfg.numTrainTimesteps;
  const ac = sched.alphasCumprod;
  const ts = ddimTimesteps(cfg, numSteps);
  checkStepCount(ts, numSteps, 'ddpm', cfg.timestepSpacing);
  const minVariance = f32(1e-20);
  const steps: SamplingStep[] = ts.map((t, i) => {
    if (t < 0 || t >= T) {
      throw new LetheError(
        ErrorCodes.BAD_ARGUMENT,
        `ddpm: ${numSteps} steps with timestep_spacing "${cfg.timestepSpacing}" and steps_offset ${cfg.stepsOffset} give timestep ${t}, outside 0..${T - 1}`,
      );
    }
    const prev = i + 1 < ts.length ? ts[i + 1] : -1;
    const a = ac[t];
    const ap = prev >= 0 ? ac[prev] : 1;
    const bt = f32(1 - a);
    const btPrev = f32(1 - ap);
    const curAlpha = f32(a / ap);
    const curBeta = f32(1 - curAlpha);
    let std = 0;
    if (t > 0) {
      const variance = Math.max(f32(f32(btPrev / bt) * curBeta), minVariance);
      switch (cfg.varianceType) {
        case 'fixed_small':
          std = f32(Math.sqrt(variance));
          break;
        case 'fixed_small_log':
          std = f32(Math.exp(f32(0.5 * f32(Math.log(variance)))));
          break;
        case 'fixed_large':
          std = f32(Math.sqrt(curBeta));
          break;
      }
    }
    return {
      timestep: t,
      cin: 1,
      alpha: f32(Math.sqrt(a)),
      sigma: f32(Math.sqrt(bt)),
      cx: f32(f32(f32(Math.sqrt(curAlpha)) * btPrev) / bt),
      ceps: 0,
      cx0: f32(f32(f32(Math.sqrt(ap)) * curBeta) / bt),
      cx0prev: 0,
      cnoise: std,
    };
  });
  return {
    scheduler: 'ddpm',
    predictionType: cfg.predictionType,
    initNoiseSigma: 1,
    clipSample: cfg.clipSample ? cfg.clipSampleRange : null,
    steps,
  };
}
