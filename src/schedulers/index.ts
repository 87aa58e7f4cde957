/**
 * Noise schedules -> sampling plans. `makePlan(config, { scheduler, steps })` turns a checkpoint's
 * scheduler_config.json into the timesteps and per-step coefficients the native sampling loop applies
 * (contract in plan.ts, reference loop in apply.ts), matching diffusers 0.35.2's
 * `XScheduler.from_config(config)` + StableDiffusionPipeline loop.
 */
import { ErrorCodes, LetheError } from '../errors';
import { makeNoiseSchedule } from './betas';
import type { SamplerName, SchedulerConfigJson } from './config';
import { DIFFUSERS_CLASS, SAMPLER_NAMES, resolveSchedulerConfig } from './config';
import { ddimPlan } from './ddim';
import { ddpmPlan } from './ddpm';
import { dpmpp2mPlan } from './dpmpp2m';
import { eulerPlan } from './euler';
import type { SamplingPlan } from './plan';

export type { SamplingPlan, SamplingStep } from './plan';
export type { SamplerName, SchedulerConfigJson, ResolvedSchedulerConfig, PredictionType, TimestepSpacing, BetaSchedule } from './config';
export { SAMPLER_NAMES, DIFFUSERS_CLASS, readSchedulerConfig, parseSchedulerConfig, resolveSchedulerConfig, parseJsonWithNonFinite } from './config';
export type { NoiseSchedule, BetaScheduleSpec } from './betas';
export { makeNoiseSchedule, sigmasFromAlphasCumprod } from './betas';
export { applyPlan } from './apply';
export type { PlanModel, PlanNoise, ApplyPlanOptions } from './apply';

export interface PlanOptions {
  scheduler: SamplerName;
  /** Number of inference steps, 1..num_train_timesteps. */
  steps: number;
  /** DDIM only: 0 (default) is deterministic DDIM, 1 is DDPM-like ancestral sampling. */
  eta?: number;
  /**
   * DDIM and DDPM: clamp the predicted x0 to [-clip_sample_range, clip_sample_range]. Default: the
   * config's clip_sample, and where the config has none (a config written for another scheduler
   * class), diffusers' default for the class (true), as `XScheduler.from_config` does.
   */
  clipSample?: boolean;
}

function badArg(reason: string): never {
  throw new LetheError(ErrorCodes.BAD_ARGUMENT, reason);
}

/** The sampling plan of `options.scheduler` built from a scheduler_config.json object. */
export function makePlan(config: SchedulerConfigJson, options: PlanOptions): SamplingPlan {
  if (options === null || typeof options !== 'object') badArg('makePlan: options must be an object { scheduler, steps, eta? }');
  const { scheduler, steps, eta } = options;
  if (!SAMPLER_NAMES.includes(scheduler)) {
    badArg(`unknown scheduler ${JSON.stringify(scheduler)} (expected one of ${SAMPLER_NAMES.map((s) => `"${s}"`).join(', ')})`);
  }
  const resolved = resolveSchedulerConfig(config, scheduler);
  const { clipSample } = options;
  if (clipSample !== undefined && typeof clipSample !== 'boolean') badArg(`clipSample must be true or false, got ${JSON.stringify(clipSample)}`);
  if (clipSample && scheduler !== 'ddim' && scheduler !== 'ddpm') badArg(`clipSample applies to the ddim and ddpm samplers only (got ${scheduler})`);
  const cfg = clipSample === undefined || (scheduler !== 'ddim' && scheduler !== 'ddpm') ? resolved : { ...resolved, clipSample };
  const T = cfg.numTrainTimesteps;
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1) {
    badArg(`steps must be an integer >= 1, got ${JSON.stringify(steps)}`);
  }
  if (steps > T) {
    badArg(`steps (${steps}) cannot exceed num_train_timesteps (${T}) of the scheduler config`);
  }
  if (eta !== undefined) {
    if (typeof eta !== 'number' || !Number.isFinite(eta) || eta < 0) badArg(`eta must be a finite number >= 0, got ${JSON.stringify(eta)}`);
    if (eta !== 0 && scheduler !== 'ddim') badArg(`eta applies to the ddim sampler only (got eta=${eta} with ${scheduler})`);
  }
  const sched = makeNoiseSchedule(cfg);
  let plan: SamplingPlan;
  switch (scheduler) {
    case 'ddim':
      plan = ddimPlan(cfg, sched, steps, eta ?? 0);
      break;
    case 'ddpm':
      plan = ddpmPlan(cfg, sched, steps);
      break;
    case 'euler':
      plan = eulerPlan(cfg, sched, steps);
      break;
    case 'dpmpp-2m':
      plan = dpmpp2mPlan(cfg, sched, steps);
      break;
  }
  checkPlan(plan, DIFFUSERS_CLASS[scheduler], steps);
  return plan;
}

/**
 * The DDIM plan an erasure samples its x_t with: clipped only when the model's own config asks for
 * it (`clip_sample: true`). CompVis' DDIM sampler, which the ESD reference uses, never clips, and a
 * config written for another scheduler class (a DPM-Solver config without clip_sample) must not
 * pick up DDIM's class default: on the bundled model that default drew 0 circles in 8 where
 * DPM-Solver++ draws 5.
 */
export function erasureSamplingPlan(config: SchedulerConfigJson, steps: number): SamplingPlan {
  return makePlan(config, { scheduler: 'ddim', steps, clipSample: (config as { clip_sample?: unknown }).clip_sample === true });
}

/** Refuse plans diffusers would run into NaN/inf with, instead of handing them to the native loop. */
function checkPlan(plan: SamplingPlan, cls: string, steps: number): void {
  const fields = ['timestep', 'cin', 'alpha', 'sigma', 'cx', 'ceps', 'cx0', 'cx0prev', 'cnoise'] as const;
  if (!Number.isFinite(plan.initNoiseSigma)) badArg(`${cls} with ${steps} steps: init_noise_sigma is not finite`);
  plan.steps.forEach((s, i) => {
    for (const f of fields) {
      if (!Number.isFinite(s[f])) {
        badArg(`${cls} with ${steps} steps: step ${i} (timestep ${s.timestep}) has a non-finite ${f}; this configuration is degenerate`);
      }
    }
    if (plan.predictionType === 'epsilon' && s.alpha === 0) {
      badArg(
        `${cls} with ${steps} steps: timestep ${s.timestep} has alphas_cumprod = 0 (rescale_betas_zero_snr), where an epsilon model cannot predict x0; use a v_prediction model`,
      );
    }
  });
}
