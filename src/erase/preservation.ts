/**
 * Lethe's closed-form preservation (the refit of attn2.to_k / to_v deltas, native/erase/preservation.h)
 * as ESD, Concept Ablation and DoCo offer it: the option that says how its second moments weigh the
 * prompts' token states.
 */
import { z } from 'zod';

export const PROJECTION_WEIGHTINGS = ['tokens', 'text-padding'] as const;
export type ProjectionWeighting = (typeof PROJECTION_WEIGHTINGS)[number];

export const projectionWeighting = z
  .enum(PROJECTION_WEIGHTINGS)
  .describe(
    "how the closed-form preservation weighs token states: tokens (every state the same; a short prompt is mostly padding) or text-padding (each prompt the same, half on its text, half on its padding)",
  );
