/**
 * scheduler_config.json: reading, validation, and diffusers' `XScheduler.from_config(config)` key
 * resolution (which keys of the file a given scheduler class takes, and its defaults for the rest).
 *
 * Any sampler can be built from any Stable Diffusion scheduler config, exactly as
 * `DDIMScheduler.from_config(pipe.scheduler.config)` does in diffusers 0.35.2: keys the target class
 * does not accept are ignored, missing keys take the target class's own defaults (so a config without
 * `timestep_spacing` gives DDIM/DDPM "leading" but Euler/DPM-Solver "linspace"), and keys listed in
 * `_use_default_values` count as missing.
 *
 * Errors: a config that is malformed (wrong types, unknown enum values) is LETHE_BAD_CHECKPOINT; a valid
 * diffusers option Lethe does not implement (Karras sigmas, thresholding, ...) is LETHE_BAD_ARGUMENT,
 * never silently ignored.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';

export type SamplerName = 'ddim' | 'ddpm' | 'euler' | 'dpmpp-2m';
export const SAMPLER_NAMES: readonly SamplerName[] = ['ddim', 'ddpm', 'euler', 'dpmpp-2m'];

/** The diffusers class each sampler reproduces. */
export const DIFFUSERS_CLASS: Record<SamplerName, string> = {
  ddim: 'DDIMScheduler',
  ddpm: 'DDPMScheduler',
  euler: 'EulerDiscreteScheduler',
  'dpmpp-2m': 'DPMSolverMultistepScheduler',
};

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type PredictionType = 'epsilon' | 'v_prediction';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

/** scheduler_config.json as diffusers writes it. Every key is optional; other keys are kept and ignored. */
export interface SchedulerConfigJson {
  _class_name?: string;
  _use_default_values?: string[];
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: string;
  trained_betas?: number[] | null;
  prediction_type?: string;
  timestep_spacing?: string;
  steps_offset?: number;
  rescale_betas_zero_snr?: boolean;
  clip_sample?: boolean;
  clip_sample_range?: number;
  set_alpha_to_one?: boolean;
  thresholding?: boolean;
  variance_type?: string | null;
  interpolation_type?: string;
  use_karras_sigmas?: boolean;
  use_exponential_sigmas?: boolean;
  use_beta_sigmas?: boolean;
  use_lu_lambdas?: boolean;
  use_flow_sigmas?: boolean;
  use_dynamic_shifting?: boolean;
  timestep_type?: string;
  final_sigmas_type?: string;
  solver_order?: number;
  algorithm_type?: string;
  solver_type?: string;
  lower_order_final?: boolean;
  euler_at_final?: boolean;
  lambda_min_clipped?: number;
  [key: string]: unknown;
}

/** The options of one diffusers scheduler class after from_config, as Lethe implements them. */
export interface ResolvedSchedulerConfig {
  sampler: SamplerName;
  numTrainTimesteps: number;
  /** 'trained_betas' when the config gives the betas explicitly (beta_schedule is then ignored). */
  betaSchedule: BetaSchedule | 'trained_betas';
  betaStart: number;
  betaEnd: number;
  trainedBetas: number[] | null;
  rescaleBetasZeroSnr: boolean;
  predictionType: PredictionType;
  timestepSpacing: TimestepSpacing;
  stepsOffset: number;
  /** DDIM, DDPM: clamp x0 to [-clipSampleRange, clipSampleRange]. */
  clipSample: boolean;
  clipSampleRange: number;
  /** DDIM: alphas_cumprod "before" the first train step, 1 (true) or alphas_cumprod[0] (false). */
  setAlphaToOne: boolean;
  /** DDPM posterior variance. */
  varianceType: 'fixed_small' | 'fixed_small_log' | 'fixed_large';
  /** Euler, DPM-Solver: the sigma after the last step. */
  finalSigmasType: 'zero' | 'sigma_min';
  /** DPM-Solver++ (multistep). */
  solverOrder: 1 | 2;
  solverType: 'midpoint' | 'heun';
  lowerOrderFinal: boolean;
  eulerAtFinal: boolean;
  lambdaMinClipped: number;
}

function bad(reason: string): never {
  throw new LetheError(ErrorCodes.BAD_CHECKPOINT, reason);
}
function unsupported(reason: string): never {
  throw new LetheError(ErrorCodes.BAD_ARGUMENT, reason);
}

// Every __init__ argument of the four classes in diffusers 0.35.2 with its default. Keys absent from a
// class are not accepted by it (from_config drops them).
const COMMON = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
} as const;

const CLASS_DEFAULTS: Record<SamplerName, Record<string, unknown>> = {
  ddim: {
    ...COMMON,
    clip_sample: true,
    set_alpha_to_one: true,
    thresholding: false,
    dynamic_thresholding_ratio: 0.995,
    clip_sample_range: 1.0,
    sample_max_value: 1.0,
  },
  ddpm: {
    ...COMMON,
    variance_type: 'fixed_small',
    clip_sample: true,
    thresholding: false,
    dynamic_thresholding_ratio: 0.995,
    clip_sample_range: 1.0,
    sample_max_value: 1.0,
  },
  euler: {
    ...COMMON,
    interpolation_type: 'linear',
    use_karras_sigmas: false,
    use_exponential_sigmas: false,
    use_beta_sigmas: false,
    sigma_min: null,
    sigma_max: null,
    timestep_spacing: 'linspace',
    timestep_type: 'discrete',
    final_sigmas_type: 'zero',
  },
  'dpmpp-2m': {
    ...COMMON,
    solver_order: 2,
    thresholding: false,
    dynamic_thresholding_ratio: 0.995,
    sample_max_value: 1.0,
    algorithm_type: 'dpmsolver++',
    solver_type: 'midpoint',
    lower_order_final: true,
    euler_at_final: false,
    use_karras_sigmas: false,
    use_exponential_sigmas: false,
    use_beta_sigmas: false,
    use_lu_lambdas: false,
    use_flow_sigmas: false,
    flow_shift: 1.0,
    final_sigmas_type: 'zero',
    lambda_min_clipped: -Infinity,
    variance_type: null,
    timestep_spacing: 'linspace',
    use_dynamic_shifting: false,
    time_shift_type: 'exponential',
  },
};

// ---- reading --------------------------------------------------------------------------------------

const NON_FINITE_TAG = '\u0000lethe-number:';

/**
 * JSON.parse that also accepts the bare tokens NaN, Infinity and -Infinity outside strings: Python's json
 * module writes them (diffusers saves `"lambda_min_clipped": -Infinity` in every DPMSolverMultistep config).
 */
export function parseJsonWithNonFinite(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (first) {
    let out = '';
    let inString = false;
    let replaced = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        out += c;
        if (c === '\\') out += text[++i] ?? '';
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') {
        inString = true;
        out += c;
        continue;
      }
      const m = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9));
      if (m) {
        out += JSON.stringify(NON_FINITE_TAG + m[1]);
        i += m[1].length - 1;
        replaced = true;
        continue;
      }
      out += c;
    }
    if (!replaced) throw first;
    return JSON.parse(out, (_k, v) => {
      if (typeof v === 'string' && v.startsWith(NON_FINITE_TAG)) {
        const tok = v.slice(NON_FINITE_TAG.length);
        return tok === 'NaN' ? NaN : tok === '-Infinity' ? -Infinity : Infinity;
      }
      return v;
    });
  }
}

/**
 * Read and validate a scheduler config: the `scheduler_config.json` file itself, the `scheduler/` folder
 * holding it, or the checkpoint folder (diffusers layout) holding `scheduler/`.
 */
export function readSchedulerConfig(file: string): SchedulerConfigJson {
  let p = file;
  try {
    if (fs.statSync(p).isDirectory()) {
      const direct = path.join(p, 'scheduler_config.json');
      p = fs.existsSync(direct) ? direct : path.join(p, 'scheduler', 'scheduler_config.json');
    }
  } catch {
    bad(`scheduler config not found: ${file}`);
  }
  let text: string;
  try {
    text = fs.readFileSync(p, 'utf8');
  } catch (e) {
    bad(`cannot read scheduler config ${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let json: unknown;
  try {
    json = parseJsonWithNonFinite(text);
  } catch (e) {
    bad(`scheduler config ${p} is not valid JSON: ${(e as Error).message}`);
  }
  return parseSchedulerConfig(json, p);
}

// ---- validation -----------------------------------------------------------------------------------

type Kind = 'int' | 'number' | 'bool' | 'string' | 'string|null' | 'numbers|null' | 'number|null';
const KEY_KINDS: Record<string, Kind> = {
  num_train_timesteps: 'int',
  beta_start: 'number',
  beta_end: 'number',
  beta_schedule: 'string',
  trained_betas: 'numbers|null',
  prediction_type: 'string',
  timestep_spacing: 'string',
  steps_offset: 'int',
  rescale_betas_zero_snr: 'bool',
  clip_sample: 'bool',
  clip_sample_range: 'number',
  set_alpha_to_one: 'bool',
  thresholding: 'bool',
  dynamic_thresholding_ratio: 'number',
  sample_max_value: 'number',
  variance_type: 'string|null',
  interpolation_type: 'string',
  use_karras_sigmas: 'bool',
  use_exponential_sigmas: 'bool',
  use_beta_sigmas: 'bool',
  use_lu_lambdas: 'bool',
  use_flow_sigmas: 'bool',
  use_dynamic_shifting: 'bool',
  sigma_min: 'number|null',
  sigma_max: 'number|null',
  timestep_type: 'string',
  final_sigmas_type: 'string',
  solver_order: 'int',
  algorithm_type: 'string',
  solver_type: 'string',
  lower_order_final: 'bool',
  euler_at_final: 'bool',
  lambda_min_clipped: 'number',
  flow_shift: 'number',
};

function kindOk(v: unknown, kind: Kind): boolean {
  switch (kind) {
    case 'int':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && !Number.isNaN(v);
    case 'bool':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'string|null':
      return v === null || typeof v === 'string';
    case 'number|null':
      return v === null || (typeof v === 'number' && !Number.isNaN(v));
    case 'numbers|null':
      return v === null || (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)));
  }
}

const KIND_TEXT: Record<Kind, string> = {
  int: 'an integer',
  number: 'a number',
  bool: 'true or false',
  string: 'a string',
  'string|null': 'a string or null',
  'number|null': 'a number or null',
  'numbers|null': 'an array of finite numbers or null',
};

/**
 * Check the types of the keys Lethe reads (absent keys are fine: they take the target class's default).
 * Returns a shallow copy; `source` names the file in messages.
 */
export function parseSchedulerConfig(json: unknown, source = 'scheduler_config.json'): SchedulerConfigJson {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    bad(`${source}: expected a JSON object, got ${Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json}`);
  }
  const cfg = { ...(json as Record<string, unknown>) };
  for (const [key, kind] of Object.entries(KEY_KINDS)) {
    if (!(key in cfg)) continue;
    const v = cfg[key];
    if (!kindOk(v, kind)) bad(`${source}: "${key}" must be ${KIND_TEXT[kind]}, got ${JSON.stringify(v)}`);
  }
  const udv = cfg._use_default_values;
  if (udv !== undefined && !(Array.isArray(udv) && udv.every((k) => typeof k === 'string'))) {
    bad(`${source}: "_use_default_values" must be an array of key names`);
  }
  return cfg as SchedulerConfigJson;
}

// ---- from_config ----------------------------------------------------------------------------------

function oneOf<T extends string>(v: unknown, key: string, allowed: readonly T[], source: string): T {
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  bad(`${source}: unknown ${key} ${JSON.stringify(v)} (expected one of ${allowed.map((a) => `"${a}"`).join(', ')})`);
}

/**
 * The options `DIFFUSERS_CLASS[sampler].from_config(config)` would get, validated, with every option Lethe
 * does not implement refused (LETHE_BAD_ARGUMENT) instead of ignored.
 */
export function resolveSchedulerConfig(
  raw: SchedulerConfigJson,
  sampler: SamplerName,
  source = 'scheduler_config.json',
): ResolvedSchedulerConfig {
  const cfg = parseSchedulerConfig(raw, source);
  const defaults = CLASS_DEFAULTS[sampler];
  if (!defaults) unsupported(`unknown sampler ${JSON.stringify(sampler)} (expected one of ${SAMPLER_NAMES.join(', ')})`);
  const cls = DIFFUSERS_CLASS[sampler];
  const useDefault = new Set(cfg._use_default_values ?? []);
  const o: Record<string, unknown> = { ...defaults };
  for (const key of Object.keys(defaults)) {
    if (key in cfg && !useDefault.has(key)) o[key] = cfg[key];
  }
  const where = `${source} (as ${cls})`;

  // --- noise schedule
  const T = o.num_train_timesteps as number;
  if (!(T >= 2)) bad(`${where}: num_train_timesteps must be >= 2, got ${T}`);
  let trainedBetas: number[] | null = null;
  if (o.trained_betas != null) {
    trainedBetas = o.trained_betas as number[];
    if (trainedBetas.length !== T) {
      bad(`${where}: trained_betas has ${trainedBetas.length} values but num_train_timesteps is ${T}`);
    }
    if (!trainedBetas.every((b) => b > 0 && b < 1)) bad(`${where}: trained_betas must lie in (0, 1)`);
  }
  const scheduleName = o.beta_schedule as string;
  if (trainedBetas === null) {
    if (scheduleName === 'sigmoid') {
      unsupported(`${where}: beta_schedule "sigmoid" is not supported (only DDPMScheduler has it in diffusers); use linear, scaled_linear or squaredcos_cap_v2`);
    }
    oneOf(scheduleName, 'beta_schedule', ['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const, where);
  }
  const betaSchedule = trainedBetas === null ? (scheduleName as BetaSchedule) : 'trained_betas';
  const betaStart = o.beta_start as number;
  const betaEnd = o.beta_end as number;
  if (trainedBetas === null && betaSchedule !== 'squaredcos_cap_v2') {
    if (!(Number.isFinite(betaStart) && Number.isFinite(betaEnd) && betaStart > 0 && betaEnd > 0 && betaStart < 1 && betaEnd < 1)) {
      bad(`${where}: beta_start and beta_end must be finite numbers in (0, 1), got ${betaStart} and ${betaEnd}`);
    }
  }

  // --- model output and timesteps
  const pred = o.prediction_type as string;
  if (pred === 'sample' || pred === 'original_sample' || pred === 'flow_prediction') {
    unsupported(`${where}: prediction_type "${pred}" is not supported; Lethe samples epsilon and v_prediction models`);
  }
  const predictionType = oneOf(pred, 'prediction_type', ['epsilon', 'v_prediction'] as const, where);
  const timestepSpacing = oneOf(o.timestep_spacing, 'timestep_spacing', ['leading', 'trailing', 'linspace'] as const, where);
  const stepsOffset = o.steps_offset as number;
  if (stepsOffset < 0) bad(`${where}: steps_offset must be >= 0, got ${stepsOffset}`);

  // --- options that change the algorithm and are not implemented: refuse
  const refuseTrue = (key: string, why: string) => {
    if (o[key] === true) unsupported(`${where}: ${key}=true is not supported (${why})`);
  };
  refuseTrue('thresholding', 'dynamic thresholding is not expressible as a sampling plan; it is meant for pixel-space models anyway');
  refuseTrue('use_karras_sigmas', 'Karras sigmas are not implemented');
  refuseTrue('use_exponential_sigmas', 'exponential sigmas are not implemented');
  refuseTrue('use_beta_sigmas', 'beta sigmas are not implemented');
  refuseTrue('use_lu_lambdas', 'Lu lambdas are not implemented');
  refuseTrue('use_flow_sigmas', 'flow-matching sigmas are not implemented');
  refuseTrue('use_dynamic_shifting', 'dynamic shifting is for flow-matching models');

  let varianceType: ResolvedSchedulerConfig['varianceType'] = 'fixed_small';
  if (sampler === 'ddpm') {
    const vt = o.variance_type;
    // null behaves as fixed_small in DDPMScheduler (no branch of _get_variance matches).
    if (vt === 'fixed_large_log' || vt === 'learned' || vt === 'learned_range') {
      unsupported(`${where}: variance_type "${vt}" is not supported (learned variances need the model's extra output channels; fixed_large_log yields NaN in diffusers)`);
    }
    if (vt !== null) varianceType = oneOf(vt, 'variance_type', ['fixed_small', 'fixed_small_log', 'fixed_large'] as const, where);
  }

  let finalSigmasType: ResolvedSchedulerConfig['finalSigmasType'] = 'zero';
  if (sampler === 'euler' || sampler === 'dpmpp-2m') {
    finalSigmasType = oneOf(o.final_sigmas_type, 'final_sigmas_type', ['zero', 'sigma_min'] as const, where);
  }
  if (sampler === 'euler') {
    const it = o.interpolation_type;
    if (it === 'log_linear') {
      unsupported(`${where}: interpolation_type "log_linear" is not supported (diffusers 0.35.2 pairs its log-linear sigmas with unrelated timesteps); use "linear"`);
    }
    oneOf(it, 'interpolation_type', ['linear'] as const, where);
    const tt = oneOf(o.timestep_type, 'timestep_type', ['discrete', 'continuous'] as const, where);
    if (tt === 'continuous' && predictionType === 'v_prediction') {
      unsupported(`${where}: timestep_type "continuous" with v_prediction (EDM-style timesteps 0.25*log(sigma)) is not supported`);
    }
  }

  let solverOrder: 1 | 2 = 2;
  let solverType: 'midpoint' | 'heun' = 'midpoint';
  if (sampler === 'dpmpp-2m') {
    let alg = o.algorithm_type as string;
    if (alg === 'deis') alg = 'dpmsolver++'; // diffusers maps it so
    if (alg === 'dpmsolver' || alg === 'sde-dpmsolver' || alg === 'sde-dpmsolver++') {
      unsupported(`${where}: algorithm_type "${alg}" is not supported; the dpmpp-2m sampler is DPM-Solver++ ("dpmsolver++")`);
    }
    oneOf(alg, 'algorithm_type', ['dpmsolver++'] as const, where);
    let st = o.solver_type as string;
    if (st === 'logrho' || st === 'bh1' || st === 'bh2') st = 'midpoint'; // diffusers maps these so
    solverType = oneOf(st, 'solver_type', ['midpoint', 'heun'] as const, where);
    const so = o.solver_order as number;
    if (so === 3) unsupported(`${where}: solver_order 3 is not supported (the dpmpp-2m sampler is second order); use 1 or 2`);
    if (so !== 1 && so !== 2) bad(`${where}: solver_order must be 1, 2 or 3, got ${so}`);
    solverOrder = so;
    const vt = o.variance_type;
    if (vt === 'learned' || vt === 'learned_range') {
      unsupported(`${where}: variance_type "${vt}" is not supported (learned variances need the model's extra output channels)`);
    }
    if (Number.isNaN(o.lambda_min_clipped)) bad(`${where}: lambda_min_clipped must be a number`);
  }

  const clipSampleRange = o.clip_sample_range as number;
  if ((sampler === 'ddim' || sampler === 'ddpm') && o.clip_sample === true && !(clipSampleRange > 0)) {
    bad(`${where}: clip_sample_range must be > 0, got ${clipSampleRange}`);
  }

  return {
    sampler,
    numTrainTimesteps: T,
    betaSchedule,
    betaStart,
    betaEnd,
    trainedBetas,
    rescaleBetasZeroSnr: o.rescale_betas_zero_snr as boolean,
    predictionType,
    timestepSpacing,
    stepsOffset,
    clipSample: (sampler === 'ddim' || sampler === 'ddpm') && (o.clip_sample as boolean),
    clipSampleRange: clipSampleRange ?? 1,
    setAlphaToOne: sampler === 'ddim' ? (o.set_alpha_to_one as boolean) : true,
    varianceType,
    finalSigmasType,
    solverOrder,
    solverType,
    lowerOrderFinal: sampler === 'dpmpp-2m' ? (o.lower_order_final as boolean) : true,
    eulerAtFinal: sampler === 'dpmpp-2m' ? (o.euler_at_final as boolean) : false,
    lambdaMinClipped: sampler === 'dpmpp-2m' ? (o.lambda_min_clipped as number) : -Infinity,
  };
}
