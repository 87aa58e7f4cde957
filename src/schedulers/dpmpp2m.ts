/**
 * DPM-Solver++(2M) (Lu et al. 2022), as diffusers 0.35.2's DPMSolverMultistepScheduler with
 * algorithm_type "dpmsolver++" (solver_order 1 or 2, solver_type "midpoint" or "heun"):
 *
 *   sigma_k from the integer timesteps; alpha_k = 1/sqrt(sigma_k^2+1), s_k = sigma_k*alpha_k,
 *   lambda_k = log(alpha_k) - log(s_k), h = lambda_{k+1} - lambda_k, x0_k = data prediction at step k
 *   first order (step 0, solver_order 1, and the final step when lower_order_final applies):
 *     x_{k+1} = (s_{k+1}/s_k) x - alpha_{k+1} (e^{-h} - 1) x0_k
 *   second order, r = h_{k-1}/h, D1 = (x0_k - x0_{k-1}) / r:
 *     midpoint: x_{k+1} = (s_{k+1}/s_k) x - alpha_{k+1} (e^{-h} - 1) x0_k - 0.5 alpha_{k+1} (e^{-h} - 1) D1
 *     heun:     x_{k+1} = (s_{k+1}/s_k) x - alpha_{k+1} (e^{-h} - 1) x0_k + alpha_{k+1} ((e^{-h} - 1)/h + 1) D1
 *
 * The sample stays VP-scaled (cin = 1, init_noise_sigma = 1). Scalars are computed in float32 like
 * diffusers' 0-dim float32 tensors; this matters here, since h is a difference of nearby lambdas.
 */
import { ErrorCodes, LetheError } from '../errors';
import type { NoiseSchedule } from './betas';
import { sigmasFromAlphasCumprod, vpFromSigma } from './betas';
import type { ResolvedSchedulerConfig } from './config';
import { f32, npInterpIndex, searchSortedLeft } from './numeric';
import type { SamplingPlan, SamplingStep } from './plan';
import { dpmSolverTimesteps, checkStepCount } from './timesteps';

const lambdaOf = (v: { alpha: number; sigma: number }) => f32(f32(Math.log(v.alpha)) - f32(Math.log(v.sigma)));

export function dpmpp2mPlan(cfg: ResolvedSchedulerConfig, sched: NoiseSchedule, numSteps: number): SamplingPlan {
  const T = cfg.numTrainTimesteps;
  const ac = Float64Array.from(sched.alphasCumprod);
  if (cfg.rescaleBetasZeroSnr) ac[T - 1] = 2 ** -24;

  // lambda_min_clipped: drop the end of the schedule where lambda(t) < lambda_min_clipped.
  let lastTimestep = T;
  if (cfg.lambdaMinClipped > -Infinity) {
    const flipped = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      const a = f32(Math.sqrt(ac[t]));
      const s = f32(Math.sqrt(f32(1 - ac[t])));
      flipped[T - 1 - t] = lambdaOf({ alpha: a, sigma: s });
    }
    lastTimestep = T - searchSortedLeft(flipped, cfg.lambdaMinClipped);
  }

  const ts = dpmSolverTimesteps(cfg, numSteps, lastTimestep);
  checkStepCount(ts, numSteps, 'dpmpp-2m', cfg.timestepSpacing);
  const n = ts.length;
  if (n === 0) {
    throw new LetheError(ErrorCodes.BAD_ARGUMENT, `dpmpp-2m: lambda_min_clipped ${cfg.lambdaMinClipped} leaves no timesteps`);
  }
  if (new Set(ts).size !== n) {
    throw new LetheError(
      ErrorCodes.BAD_ARGUMENT,
      `dpmpp-2m: ${numSteps} steps with timestep_spacing "${cfg.timestepSpacing}" repeat timesteps (${ts.join(', ')}); use fewer steps`,
    );
  }
  const table = sigmasFromAlphasCumprod(ac);
  const sigmas = ts.map((t) => f32(npInterpIndex(t, table)));
  sigmas.push(cfg.finalSigmasType === 'zero' ? 0 : table[0]);
  const vp = sigmas.map(vpFromSigma);
  const lambdas = vp.map(lambdaOf);

  const steps: SamplingStep[] = ts.map((t, k) => {
    const cur = vp[k];
    const next = vp[k + 1];
    const lowerOrderFinal =
      k === n - 1 && (cfg.eulerAtFinal || (cfg.lowerOrderFinal && n < 15) || cfg.finalSigmasType === 'zero');
    const h = f32(lambdas[k + 1] - lambdas[k]);
    const em1 = f32(f32(Math.exp(-h)) - 1); // e^{-h} - 1
    const b = f32(next.alpha * em1);
    const step: SamplingStep = {
      timestep: t,
      cin: 1,
      alpha: cur.alpha,
      sigma: cur.sigma,
      cx: f32(next.sigma / cur.sigma),
      ceps: 0,
      cx0: -b,
      cx0prev: 0,
      cnoise: 0,
    };
    if (cfg.solverOrder === 2 && k > 0 && !lowerOrderFinal) {
      const h0 = f32(lambdas[k] - lambdas[k - 1]);
      const invR0 = f32(1 / f32(h0 / h));
      if (cfg.solverType === 'midpoint') {
        const half = f32(0.5 * b);
        step.cx0 = -b - half * invR0;
        step.cx0prev = half * invR0;
      } else {
        const c = f32(next.alpha * f32(f32(em1 / h) + 1));
        step.cx0 = -b + c * invR0;
        step.cx0prev = -c * invR0;
      }
    }
    return step;
  });
  return { scheduler: 'dpmpp-2m', predictionType: cfg.predictionType, initNoiseSigma: 1, clipSample: null, steps };
}
