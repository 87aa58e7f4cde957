/**
 * The native options of erase/method.h's TrainingNoise, for methods that noise latents
 * themselves (Concept Ablation, few-shot unlearning): the model's DDPM training schedule (its
 * alphas' cumulative product) and whether the UNet predicts v.
 */
import type { Pipeline } from '../pipeline';
import { makeNoiseSchedule, resolveSchedulerConfig } from '../schedulers';
import type { Tensor } from '../tensor';

export function trainingNoiseOptions(pipe: Pipeline): { vPrediction: boolean; alphasCumprod: Tensor } {
  const resolved = resolveSchedulerConfig(pipe.schedulerConfig, 'ddpm');
  const schedule = makeNoiseSchedule(resolved);
  return {
    vPrediction: resolved.predictionType === 'v_prediction',
    alphasCumprod: { dtype: 'float32', shape: [schedule.numTrainTimesteps], data: Float32Array.from(schedule.alphasCumprod) },
  };
}
