/**
 * Timestep spacings ("leading", "trailing", "linspace"; Table 2 of Lin et al. 2023, "Common Diffusion Noise
 * Schedules and Sample Steps are Flawed") exactly as each diffusers 0.35.2 class's set_timesteps computes
 * them. The three classes differ in small ways that change the timesteps, so each has its own function:
 *
 *   DDIM / DDPM   integers; leading: (0..N-1) * (T // N) + steps_offset
 *   Euler         float32; linspace is not rounded, so timesteps can be fractional (e.g. 832.5)
 *   DPM-Solver    integers; linspace and leading use N + 1 points and drop the last one, and
 *                 lambda_min_clipped can shorten the range
 */
import { ErrorCodes, LetheError } from '../errors';
import { f32, npArange, npLinspace, rint } from './numeric';

export interface SpacingOptions {
  numTrainTimesteps: number;
  timestepSpacing: 'leading' | 'trailing' | 'linspace';
  stepsOffset: number;
}

/** DDIMScheduler.set_timesteps and DDPMScheduler.set_timesteps (identical in diffusers 0.35.2). */
export function ddimTimesteps(o: SpacingOptions, n: number): number[] {
  const T = o.numTrainTimesteps;
  switch (o.timestepSpacing) {
    case 'linspace':
      return npLinspace(0, T - 1, n).map(rint).reverse();
    case 'leading': {
      const ratio = Math.floor(T / n);
      const ts: number[] = [];
      for (let i = n - 1; i >= 0; i--) ts.push(i * ratio + o.stepsOffset);
      return ts;
    }
    case 'trailing':
      return npArange(T, 0, -(T / n)).map((t) => rint(t) - 1);
  }
}

/** EulerDiscreteScheduler.set_timesteps: float32 values. */
export function eulerTimesteps(o: SpacingOptions, n: number): number[] {
  const T = o.numTrainTimesteps;
  switch (o.timestepSpacing) {
    case 'linspace':
      return npLinspace(0, T - 1, n).map(f32).reverse();
    case 'leading': {
      const ratio = Math.floor(T / n);
      const ts: number[] = [];
      for (let i = n - 1; i >= 0; i--) ts.push(f32(f32(i * ratio) + o.stepsOffset));
      return ts;
    }
    case 'trailing':
      return npArange(T, 0, -(T / n)).map((t) => f32(f32(rint(t)) - 1));
  }
}

/**
 * DPMSolverMultistepScheduler.set_timesteps. `lastTimestep` is num_train_timesteps minus the number of
 * timesteps cut off by lambda_min_clipped (= num_train_timesteps by default).
 */
export function dpmSolverTimesteps(o: SpacingOptions, n: number, lastTimestep: number): number[] {
  const T = o.numTrainTimesteps;
  switch (o.timestepSpacing) {
    case 'linspace':
      return npLinspace(0, lastTimestep - 1, n + 1).map(rint).reverse().slice(0, n);
    case 'leading': {
      const ratio = Math.floor(lastTimestep / (n + 1));
      const ts: number[] = [];
      for (let i = n; i >= 1; i--) ts.push(i * ratio + o.stepsOffset);
      return ts;
    }
    case 'trailing':
      return npArange(lastTimestep, 0, -(T / n)).map((t) => rint(t) - 1);
  }
}

/**
 * For some step counts (61, 103, 121, ... of 1000), np.arange(T, 0, -T/N) has N + 1 elements, and diffusers'
 * "trailing" spacing then runs N + 1 steps, the last at timestep -1 (DDIM/DDPM even index alphas_cumprod[-1],
 * the last entry). Lethe refuses such a count rather than copy that. (Fewer timesteps than N are legitimate:
 * DPM-Solver's lambda_min_clipped shortens the trailing schedule, and diffusers then runs fewer steps.)
 */
export function checkStepCount(timesteps: readonly number[], n: number, sampler: string, spacing: string): void {
  if (timesteps.some((t) => t < 0)) {
    throw new LetheError(
      ErrorCodes.BAD_ARGUMENT,
      `${sampler}: ${n} steps with timestep_spacing "${spacing}" give ${timesteps.length} timesteps ending at ${timesteps[timesteps.length - 1]} in diffusers 0.35.2 (a rounding quirk of its spacing); choose another step count`,
    );
  }
}
