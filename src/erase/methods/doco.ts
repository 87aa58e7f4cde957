/**
 * DoCo (Wu et al., AAAI 2025, "Unlearning Concepts in Diffusion Model via Concept Domain Correction
 * and Concept Preserving Gradient"): the target concept's outputs are pulled into the anchor's
 * output domain by a discriminator on predicted clean latents (adversarial training), and the
 * update is kept from fighting a preservation gradient (gradient surgery). It trains on Concept
 * Ablation's prompt pairs and anchor images (the same cache); the loop is native/erase/doco.cc.
 * docs/doco.md has the algorithm, the deviations from the reference code and the calibration.
 */
import { z } from 'zod';
import { registerMethod, type NativeRequest, type PrepareContext } from '../method';
import { ANCHOR_REFERENCE, anchorTraining, anchorTrainingBreakdown, caOptions } from './ca';

export const docoOptions = caOptions.extend({
  dLr: z
    .number()
    .min(0)
    .finite()
    .describe("the discriminator's learning rate (Adam, betas 0.5 / 0.999); 0: the reference's by the concept's kind, 5e-4 for styles, 1e-4 otherwise"),
  warmup: z.number().int().min(0).describe('steps that train only the discriminator before the model trains (the model trains at steps > warmup)'),
  surgery: z.boolean().describe('concept-preserving gradient surgery against the preservation gradient (off: the sum adversarial + 0.1 × priorWeight × preservation)'),
  surgeryLambda: z.number().min(0).finite().describe('gradient surgery strength λ: g_u − λ·cos(g_u, g_p)·ĝ_p where the cosine is negative'),
  discriminatorBlocks: z
    .number()
    .int()
    .min(0)
    .max(4)
    .describe("the PatchGAN's stride-2 blocks (64, 128, 256, 512 channels); 0: as many as leave a patch grid of at least 3×3 (4 on SD's 64×64 latents)"),
});

export type DocoOptions = z.infer<typeof docoOptions>;

/**
 * The reference code's defaults for real checkpoints (its README's commands): batch 8, lr 6e-6
 * scaled by the batch (scale_lr) on one device, 2000 steps, prior preservation, surgery with λ 1.
 * Its warm-up option defaults to 500 (the README's runs give 1000); the discriminator's lr is 5e-4
 * for styles and 1e-4 otherwise (dLr 0: chosen by the concept's kind).
 */
const REFERENCE = {
  ...ANCHOR_REFERENCE,
  iterations: 2000,
  lr: 4.8e-5,
  batch: 8,
  dLr: 0,
  warmup: 500,
  surgery: true,
  surgeryLambda: 1,
  discriminatorBlocks: 0,
  preserveProjection: 0,
  projectionKeep: [] as string[],
  projectionWeighting: 'tokens' as const,
};

async function prepare(ctx: PrepareContext<DocoOptions>): Promise<NativeRequest> {
  const o = ctx.options;
  const shared = await anchorTraining(ctx);
  const kinds = shared.hyperparameters.kinds;
  const dLr = o.dLr > 0 ? o.dLr : kinds.includes('style') ? 5e-4 : 1e-4;
  if (o.dLr === 0) ctx.note(`dLr ${dLr}: the reference's discriminator lr for ${kinds.includes('style') ? 'styles' : 'objects and instances'} (--d-lr chooses)`);
  // The model trains at steps > warmup (0-based), as the reference's `global_step > warm_up`.
  if (o.iterations <= o.warmup + 1) ctx.note(`warmup ${o.warmup} with ${o.iterations} iterations: only the discriminator trains (the model trains at steps after the warm-up), the model is unchanged`);
  const own = { dLr, warmup: o.warmup, surgery: o.surgery, surgeryLambda: o.surgeryLambda, discriminatorBlocks: o.discriminatorBlocks };
  return { ...shared, options: { ...shared.options, ...own }, hyperparameters: { ...shared.hyperparameters, ...own } };
}

export const DOCO_METHOD = registerMethod({
  id: 'doco',
  native: 'doco',
  summary: "DoCo: the target's predicted clean latents are made indistinguishable from the anchor's by a discriminator, with gradient surgery against a preservation gradient",
  options: docoOptions,
  referenceDefaults: REFERENCE,
  promptFileOptions: ['targetPrompts', 'anchorPrompts'],
  prepare,
  breakdown: anchorTrainingBreakdown,
});
