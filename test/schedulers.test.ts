/**
 * Sampling plans against diffusers 0.35.2 (fixtures from scripts/make_scheduler_fixtures.py): timesteps
 * exactly, model inputs and final samples of full sampling loops with a fake model, beta schedules,
 * and clear errors for bad or unsupported configs.
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  SamplingPlan,
  SchedulerConfigJson,
  applyPlan,
  makeNoiseSchedule,
  makePlan,
  parseJsonWithNonFinite,
  readSchedulerConfig,
  resolveSchedulerConfig,
  type SamplerName,
} from '../src/schedulers';
import { expectCode, tmpDir } from './helpers';

const DIR = path.join(__dirname, 'fixtures', 'schedulers');
const TOL = 1e-5; // |ts - diffusers| <= TOL * max(1, |diffusers|)

function decode(s: string): Float64Array {
  const [kind, b64] = [s.slice(0, 4), s.slice(4)];
  const buf = Buffer.from(b64, 'base64');
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  if (kind === 'f64:') return new Float64Array(ab);
  if (kind === 'f32:') return Float64Array.from(new Float32Array(ab));
  throw new Error(`bad array encoding ${kind}`);
}

function load(name: string): any {
  return parseJsonWithNonFinite(fs.readFileSync(path.join(DIR, name), 'utf8'));
}

/** The fake model of the fixtures: out = 0.3 * tanh(xin) + 0.01 * t / 1000. */
function fakeModel(xin: Float64Array, t: number): Float64Array {
  return xin.map((v) => 0.3 * Math.tanh(v) + (0.01 * t) / 1000);
}

interface Err {
  abs: number;
  rel: number;
  mixed: number;
}
function compare(ts: ArrayLike<number>, ref: ArrayLike<number>): Err {
  expect(ts.length).toBe(ref.length);
  let abs = 0;
  let rel = 0;
  let mixed = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ts[i] - ref[i]);
    abs = Math.max(abs, d);
    rel = Math.max(rel, d / Math.max(Math.abs(ref[i]), 1e-12));
    mixed = Math.max(mixed, d / Math.max(1, Math.abs(ref[i])));
  }
  return { abs, rel, mixed };
}

const report: Record<string, { inputs: Err; final: Err; f64: Err; worst: string }> = {};
function record(sampler: string, inputs: Err, final: Err, f64: Err, label: string) {
  const zero = () => ({ abs: 0, rel: 0, mixed: 0 });
  const r = (report[sampler] ??= { inputs: zero(), final: zero(), f64: zero(), worst: '' });
  if (final.mixed >= r.final.mixed) r.worst = label;
  for (const k of ['abs', 'rel', 'mixed'] as const) {
    r.inputs[k] = Math.max(r.inputs[k], inputs[k]);
    r.final[k] = Math.max(r.final[k], final[k]);
    r.f64[k] = Math.max(r.f64[k], f64[k]);
  }
}

afterAll(() => {
  const e = (x: number) => x.toExponential(1);
  const lines = Object.entries(report).map(
    ([s, r]) =>
      `${s.padEnd(9)} inputs ${e(r.inputs.mixed)} (abs ${e(r.inputs.abs)}) | final ${e(r.final.mixed)} (abs ${e(r.final.abs)}, ` +
      `elementwise rel ${e(r.final.rel)}; worst: ${r.worst}) | final, float64 carry ${e(r.f64.mixed)}`,
  );
  if (lines.length) {
    console.log(`schedulers vs diffusers 0.35.2, max |ts - ref| / max(1, |ref|):\n${lines.join('\n')}`);
  }
});

const configFiles = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.json') && f !== 'schedules.json' && f !== 'timesteps.json')
  .sort();

describe('sampling plans reproduce diffusers sampling loops', () => {
  test('fixtures exist', () => {
    expect(configFiles.length).toBeGreaterThanOrEqual(8);
  });

  for (const file of configFiles) {
    const fx = load(file);
    const config = fx.config as SchedulerConfigJson;
    describe(file.replace(/\.json$/, ''), () => {
      for (const run of fx.runs) {
        const label = `${file.replace(/\.json$/, '')} ${run.sampler} steps=${run.steps}${run.eta ? ` eta=${run.eta}` : ''}`;
        test(`${run.sampler} ${run.steps} steps${run.eta ? ` eta=${run.eta}` : ''}`, () => {
          const plan = makePlan(config, { scheduler: run.sampler as SamplerName, steps: run.steps, eta: run.eta });
          // timesteps: exactly
          expect(plan.steps.map((s) => s.timestep)).toEqual(run.timesteps);
          // torch's float32 sqrt in sqrt(max_sigma^2 + 1) is not always correctly rounded: 1 ulp
          expect(Math.abs(plan.initNoiseSigma - run.initNoiseSigma)).toBeLessThanOrEqual(1.2e-7 * run.initNoiseSigma);

          const latents = decode(run.latents);
          const n = latents.length;
          const refInputs = decode(run.modelInputs);
          const noiseSteps: number[] = run.noiseSteps ?? [];
          const noise = run.noise ? decode(run.noise) : null;
          // DDPM draws noise exactly where cnoise != 0 (t > 0); DDIM with eta > 0 draws at every step,
          // but its last step has std 0 when set_alpha_to_one
          const planNoise = plan.steps.flatMap((s, i) => (s.cnoise !== 0 ? [i] : []));
          if (plan.scheduler === 'ddpm') expect(planNoise).toEqual(noiseSteps);
          else expect(noiseSteps).toEqual(expect.arrayContaining(planNoise));

          const inputs = new Float64Array(refInputs.length);
          const model = (xin: Float64Array, t: number, i: number) => {
            inputs.set(xin, i * n);
            return fakeModel(xin, t);
          };
          const noiseFor = (i: number) => {
            const k = noiseSteps.indexOf(i);
            if (k < 0 || !noise) throw new Error(`no noise recorded for step ${i}`);
            return noise.subarray(k * n, (k + 1) * n);
          };
          const ref = decode(run.final);
          // 1. the plan contract as specified: everything float64
          const eF64 = compare(applyPlan(plan, latents, model, noiseFor), ref);
          // 2. diffusers' Euler and DPM-Solver step() cast the sample to float32 (its DDIM and DDPM do
          //    not): emulating that measures the plan itself rather than diffusers' rounding
          const f32carry = plan.scheduler === 'euler' || plan.scheduler === 'dpmpp-2m';
          const eOut = f32carry ? compare(applyPlan(plan, latents, model, noiseFor, { sampleFloat32: true }), ref) : eF64;
          // model inputs (of the last run) are stored as float32: compare against that precision
          const eIn = compare(Float64Array.from(inputs, Math.fround), refInputs);
          record(run.sampler, eIn, eOut, eF64, label);
          expect(eIn.mixed).toBeLessThanOrEqual(TOL);
          expect(eOut.mixed).toBeLessThanOrEqual(TOL);
          expect(eF64.mixed).toBeLessThanOrEqual(TOL);

          if (plan.clipSample !== null && run.steps >= 5) {
            // clip_sample is exercised: without the clamp the result would differ
            const unclipped = applyPlan({ ...plan, clipSample: null }, latents, fakeModel, noiseFor);
            expect(compare(unclipped, ref).mixed).toBeGreaterThan(1e-3);
          }

          if (run.sigmas) {
            // Euler / DPM-Solver sigmas: the step coefficients are built from these
            const sig = decode(run.sigmas);
            const sPlan = plan.steps.map((s) => s.sigma / s.alpha);
            expect(compare(sPlan, sig.subarray(0, sPlan.length)).rel).toBeLessThanOrEqual(1e-6);
          }
        });
      }
    });
  }
});

describe('beta schedules', () => {
  const schedules = load('schedules.json');
  const specs: Record<string, Parameters<typeof makeNoiseSchedule>[0]> = {
    scaled_linear: { numTrainTimesteps: 1000, betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012 },
    linear: { numTrainTimesteps: 1000, betaSchedule: 'linear', betaStart: 0.0001, betaEnd: 0.02 },
    squaredcos_cap_v2: { numTrainTimesteps: 1000, betaSchedule: 'squaredcos_cap_v2', betaStart: 0, betaEnd: 0 },
    scaled_linear_zsnr: {
      numTrainTimesteps: 1000,
      betaSchedule: 'scaled_linear',
      betaStart: 0.00085,
      betaEnd: 0.012,
      rescaleBetasZeroSnr: true,
    },
    linear_500: { numTrainTimesteps: 500, betaSchedule: 'linear', betaStart: 0.0001, betaEnd: 0.02 },
    trained: {
      numTrainTimesteps: 1000,
      betaSchedule: 'trained_betas',
      betaStart: 0,
      betaEnd: 0,
      trainedBetas: Array.from({ length: 1000 }, (_, i) => i * ((0.03 - 0.001) / 999) + 0.001).map((v, i) => (i === 999 ? 0.03 : v)),
    },
  };
  for (const [name, spec] of Object.entries(specs)) {
    test(`${name}: betas and alphas_cumprod`, () => {
      const ref = schedules[name];
      const s = makeNoiseSchedule(spec);
      const eb = compare(s.betas, decode(ref.betas));
      const ea = compare(s.alphasCumprod, decode(ref.alphasCumprod));
      if (name === 'scaled_linear_zsnr') {
        // torch's float32 sqrt is not always correctly rounded: a few values 1 float32 ulp apart
        expect(eb.abs).toBeLessThanOrEqual(2.5e-7);
        expect(ea.abs).toBeLessThanOrEqual(2.5e-7);
        expect(ea.rel).toBeLessThanOrEqual(1e-6);
      } else {
        // float32 tables, reproduced bit for bit (torch's float32 linspace included)
        expect(eb.abs).toBe(0);
        expect(ea.abs).toBe(0);
      }
    });
  }

  test('makePlan uses the schedule of the config', () => {
    const ac = makeNoiseSchedule({ numTrainTimesteps: 1000, betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012 }).alphasCumprod;
    const plan = makePlan({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, clip_sample: false }, { scheduler: 'ddim', steps: 10 });
    for (const s of plan.steps) {
      expect(s.alpha).toBeCloseTo(Math.sqrt(ac[s.timestep]), 7);
      expect(s.sigma).toBeCloseTo(Math.sqrt(1 - ac[s.timestep]), 7);
    }
  });
});

describe('timestep spacings for many step counts', () => {
  const fx = load('timesteps.json');
  const config = fx.config as SchedulerConfigJson;
  for (const [key, rows] of Object.entries(fx.timesteps as Record<string, Record<string, number[] | string>>)) {
    const [sampler, spacing] = key.split('/');
    test(key, () => {
      const cfg = { ...config, timestep_spacing: spacing };
      for (const [nText, ref] of Object.entries(rows)) {
        const steps = Number(nText);
        const inRange = Array.isArray(ref) && ref.every((t) => t >= 0 && t < 1000);
        const distinct = Array.isArray(ref) && new Set(ref).size === ref.length;
        // diffusers' set_timesteps accepts these, but: "trailing" can add a step at timestep -1 (61, 103
        // steps), DDIM/DDPM index alphas_cumprod out of range, DPM-Solver divides by zero on repeated
        // timesteps. Lethe refuses them up front.
        const refused =
          typeof ref === 'string' ||
          (Array.isArray(ref) && ref.some((t) => t < 0)) ||
          ((sampler === 'ddim' || sampler === 'ddpm') && !inRange) ||
          (sampler === 'dpmpp-2m' && !distinct);
        if (spacing === 'trailing' && (steps === 61 || steps === 103)) expect(refused).toBe(true);
        if (refused) {
          expect(() => makePlan(cfg, { scheduler: sampler as SamplerName, steps })).toThrow(/LETHE_BAD_ARGUMENT/);
        } else {
          const plan = makePlan(cfg, { scheduler: sampler as SamplerName, steps });
          expect([steps, plan.steps.map((s) => s.timestep)]).toEqual([steps, ref]);
        }
      }
    });
  }
});

describe('plan contract', () => {
  const sd15 = load('sd15.json').config as SchedulerConfigJson;

  test('plans are plain data with the documented fields', () => {
    for (const scheduler of ['ddim', 'ddpm', 'euler', 'dpmpp-2m'] as const) {
      const plan: SamplingPlan = makePlan(sd15, { scheduler, steps: 4 });
      expect(Object.keys(plan).sort()).toEqual(['clipSample', 'initNoiseSigma', 'predictionType', 'scheduler', 'steps']);
      for (const s of plan.steps) {
        expect(Object.keys(s).sort()).toEqual(['alpha', 'ceps', 'cin', 'cnoise', 'cx', 'cx0', 'cx0prev', 'sigma', 'timestep']);
        expect(s.alpha * s.alpha + s.sigma * s.sigma).toBeCloseTo(1, 6);
      }
      expect(plan.steps[0].cx0prev).toBe(0);
      expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
    }
  });

  test('DDIM with eta = 0 is deterministic and adds no noise', () => {
    const plan = makePlan(sd15, { scheduler: 'ddim', steps: 10 });
    expect(plan.steps.every((s) => s.cnoise === 0)).toBe(true);
    expect(() => applyPlan(plan, new Float64Array(4), (x) => x)).not.toThrow();
  });

  test('applyPlan asks for noise only where needed, and refuses to invent it', () => {
    const plan = makePlan(sd15, { scheduler: 'ddpm', steps: 3 });
    expect(() => applyPlan(plan, new Float64Array(4), (x) => x)).toThrow(/LETHE_BAD_ARGUMENT/);
  });
});

describe('config errors', () => {
  const sd15 = load('sd15.json').config as SchedulerConfigJson;
  const plan = (cfg: SchedulerConfigJson, scheduler: SamplerName = 'ddim', steps = 10, eta?: number) => () =>
    makePlan(cfg, { scheduler, steps, eta });

  test('unknown beta_schedule is a bad checkpoint', async () => {
    const e = await expectCode(plan({ ...sd15, beta_schedule: 'quadratic' }), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/beta_schedule "quadratic".*linear.*scaled_linear.*squaredcos_cap_v2/);
  });

  test('wrongly typed keys are a bad checkpoint', async () => {
    await expectCode(plan({ ...sd15, num_train_timesteps: '1000' as unknown as number }), 'LETHE_BAD_CHECKPOINT');
    await expectCode(plan({ ...sd15, steps_offset: 0.5 }), 'LETHE_BAD_CHECKPOINT');
    await expectCode(plan({ ...sd15, clip_sample: 'no' as unknown as boolean }), 'LETHE_BAD_CHECKPOINT');
    await expectCode(plan({ ...sd15, timestep_spacing: 'even' }), 'LETHE_BAD_CHECKPOINT');
    await expectCode(plan({ ...sd15, prediction_type: 'noise' }), 'LETHE_BAD_CHECKPOINT');
    await expectCode(plan({ ...sd15, trained_betas: [0.1, 0.2] }), 'LETHE_BAD_CHECKPOINT');
    await expectCode(() => makePlan([] as unknown as SchedulerConfigJson, { scheduler: 'ddim', steps: 5 }), 'LETHE_BAD_CHECKPOINT');
  });

  test('unsupported options are refused, not ignored', async () => {
    const cases: [SchedulerConfigJson, SamplerName, RegExp][] = [
      [{ ...sd15, use_karras_sigmas: true }, 'euler', /use_karras_sigmas=true is not supported/],
      [{ ...sd15, use_karras_sigmas: true }, 'dpmpp-2m', /Karras/],
      [{ ...sd15, thresholding: true }, 'ddim', /thresholding=true is not supported/],
      [{ ...sd15, thresholding: true }, 'ddpm', /thresholding/],
      [{ ...sd15, prediction_type: 'sample' }, 'ddim', /prediction_type "sample" is not supported/],
      [{ ...sd15, algorithm_type: 'sde-dpmsolver++' }, 'dpmpp-2m', /algorithm_type "sde-dpmsolver\+\+"/],
      [{ ...sd15, solver_order: 3 }, 'dpmpp-2m', /solver_order 3/],
      [{ ...sd15, interpolation_type: 'log_linear' }, 'euler', /log_linear/],
      [{ ...sd15, variance_type: 'learned_range' }, 'ddpm', /learned_range/],
      [{ ...sd15, beta_schedule: 'sigmoid' }, 'ddpm', /sigmoid/],
      [{ ...sd15, use_exponential_sigmas: true }, 'euler', /exponential/],
    ];
    for (const [cfg, sampler, msg] of cases) {
      const e = await expectCode(plan(cfg, sampler), 'LETHE_BAD_ARGUMENT');
      expect(e.message).toMatch(msg);
    }
  });

  test('options a class does not take are ignored, as in from_config', () => {
    // DDIMScheduler has no use_karras_sigmas; EulerDiscreteScheduler has no thresholding / clip_sample
    expect(() => makePlan({ ...sd15, use_karras_sigmas: true }, { scheduler: 'ddim', steps: 5 })).not.toThrow();
    expect(makePlan({ ...sd15, thresholding: true, clip_sample: true }, { scheduler: 'euler', steps: 5 }).clipSample).toBeNull();
    // _use_default_values: the key counts as absent, so the target class's default applies
    const p = makePlan({ ...sd15, timestep_spacing: 'leading', _use_default_values: ['timestep_spacing'] }, { scheduler: 'euler', steps: 5 });
    expect(p.steps[0].timestep).toBe(999); // Euler's default "linspace", not "leading" (801)
  });

  test('bad step counts and eta', async () => {
    let e = await expectCode(plan(sd15, 'ddim', 1001), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/steps \(1001\) cannot exceed num_train_timesteps \(1000\)/);
    await expectCode(plan({ ...sd15, num_train_timesteps: 100 }, 'euler', 101), 'LETHE_BAD_ARGUMENT');
    e = await expectCode(plan(sd15, 'ddim', 0), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/steps must be an integer >= 1/);
    await expectCode(plan(sd15, 'euler', -3), 'LETHE_BAD_ARGUMENT');
    await expectCode(plan(sd15, 'euler', 2.5), 'LETHE_BAD_ARGUMENT');
    await expectCode(plan(sd15, 'ddim', NaN), 'LETHE_BAD_ARGUMENT');
    e = await expectCode(plan(sd15, 'euler', 10, 0.5), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/eta applies to the ddim sampler only/);
    await expectCode(plan(sd15, 'ddim', 10, -1), 'LETHE_BAD_ARGUMENT');
    e = await expectCode(plan(sd15, 'plms' as SamplerName), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/unknown scheduler "plms"/);
    // leading + steps_offset 1 with 1000 steps reaches timestep 1000: diffusers' DDIM would index out of range
    e = await expectCode(plan(sd15, 'ddim', 1000), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/timestep 1000, outside 0..999/);
  });

  test('zero terminal SNR with an epsilon model is refused where alpha = 0', async () => {
    const cfg = { ...sd15, rescale_betas_zero_snr: true, timestep_spacing: 'trailing' };
    const e = await expectCode(plan(cfg, 'ddim', 10), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/alphas_cumprod = 0/);
    // Euler replaces the last alphas_cumprod by 2^-24, as diffusers does
    expect(() => makePlan(cfg, { scheduler: 'euler', steps: 10 })).not.toThrow();
  });

  test('readSchedulerConfig: files, folders, -Infinity, and errors', async () => {
    const dir = tmpDir('lethe-sched-');
    const file = path.join(dir, 'scheduler_config.json');
    fs.writeFileSync(file, '{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "note": "-Infinity NaN"}');
    const cfg = readSchedulerConfig(file);
    expect(cfg.lambda_min_clipped).toBe(-Infinity);
    expect(cfg.note).toBe('-Infinity NaN');
    expect(readSchedulerConfig(dir).lambda_min_clipped).toBe(-Infinity);
    // a checkpoint folder: <root>/scheduler/scheduler_config.json
    const root = tmpDir('lethe-ckpt-');
    fs.mkdirSync(path.join(root, 'scheduler'));
    fs.copyFileSync(file, path.join(root, 'scheduler', 'scheduler_config.json'));
    expect(readSchedulerConfig(root)._class_name).toBe('DPMSolverMultistepScheduler');
    fs.rmSync(root, { recursive: true, force: true });
    expect(resolveSchedulerConfig(cfg, 'dpmpp-2m').lambdaMinClipped).toBe(-Infinity);
    await expectCode(() => readSchedulerConfig(path.join(dir, 'missing.json')), 'LETHE_BAD_CHECKPOINT');
    fs.writeFileSync(file, '{"beta_schedule": ');
    const e = await expectCode(() => readSchedulerConfig(file), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/not valid JSON/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
