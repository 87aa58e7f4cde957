/**
 * The native options of erase/method.h's TrainingNoise, for methods that noise latents
 * themselves (Concept Ablation, few-shot unlearning, DoCo): the model's DDPM training schedule
 * (its alphas' cumulative product), whether the UNet predicts v, and the clamp DDPM applies to a
 * predicted clean latent when the scheduler config says clip_sample (0: none).
 */
import type { Pipeline } from '../pipeline';
import { makeNoiseSchedule, resolveSchedulerConfig } from '../schedulers';
import type { Tensor } from '../tensor';

export function trainingNoiseOptions(pipe: Pipeline): { vPrediction: boolean; alphasCumprod: Tensor; clipSampleRange: number } {
  const resolved = resolveSchedulerConfig(pipe.schedulerConfig, 'ddpm');
  const schedule = makeNoiseSchedule(resolved);
  return {
    vPrediction: resolved.predictionType === 'v_prediction',
    alphasCumprod: { dtype: 'float32', shape: [schedule.numTrainTimesteps], data: Float32Array.from(schedule.alphasCumprod) },
    clipSampleRange: resolved.clipSample ? resolved.clipSampleRange : 0,
  };
}
