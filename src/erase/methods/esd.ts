/**
 * ESD-x / ESD-u and variants (Gandikota et al., ICCV 2023, "Erasing Concepts from Diffusion
 * Models"). TypeScript turns the options into prompt groups and the DDIM plan; the native loop
 * (native/erase/esd.cc) trains. docs/esd.md has the calibration on the bundled model.
 */
import { z } from 'zod';
import { ErrorCodes, LetheError } from '../../errors';
import { conceptPromptSets } from '../../eval/prompts';
import { erasureSamplingPlan } from '../../schedulers';
import { registerMethod, type ErasureMethod, type NativeRequest, type PrepareContext } from '../method';
import { projectionWeighting } from '../preservation';

export const esdOptions = z.object({
  eta: z.number().finite().describe('negative guidance η: the target is ε*(x,t,"") − η·(ε*(x,t,c) − ε*(x,t,""))'),
  startGuidance: z.number().finite().describe('guidance while sampling x_t'),
  ddimSteps: z.number().int().min(1).max(1000).describe('DDIM steps S of the sampled trajectories'),
  sampleWith: z.enum(['trained', 'frozen']).describe('sample x_t with the model being trained (the reference) or the frozen one (the diffusers-era script)'),
  eraseFrom: z.string().trim().min(1, 'eraseFrom is an empty prompt').optional().describe('sample and train on this prompt; the target is still built from the concept'),
  preserve: z
    .array(z.string())
    .describe('prompts whose predictions are kept (Lethe\'s addition; "" is the unconditional prompt): each iteration adds preserveWeight·MSE for one of them'),
  preserveWeight: z.number().min(0).finite().describe('weight of the preservation term (0: none)'),
  preserveProjection: z
    .number()
    .min(0)
    .finite()
    .describe('closed-form preservation (Lethe\'s addition): refit the to_k/to_v deltas to keep the token states of the preserve and projectionKeep prompts (weight; 0: off)'),
  projectionKeep: z.array(z.string()).describe('further prompts only the closed-form preservation keeps'),
  projectionWeighting,
  worldPrompts: z
    .boolean()
    .describe(
      "on a model of the shapes world: train on a world concept as its captions phrase it ('a circle') and keep the world's other concepts and the concept's siblings' captions (the bundled model's measured default)",
    ),
});

export type EsdOptions = z.infer<typeof esdOptions>;

/** The reference implementation's defaults (train-esd.py), for real checkpoints. */
const REFERENCE = {
  iterations: 1000,
  lr: 1e-5,
  seed: 0,
  eta: 1,
  startGuidance: 3,
  ddimSteps: 50,
  sampleWith: 'trained' as const,
  preserve: [] as string[],
  preserveWeight: 1,
  preserveProjection: 0,
  projectionKeep: [] as string[],
  projectionWeighting: 'tokens' as const,
  worldPrompts: false,
};

function badArg(reason: string): never {
  throw new LetheError(ErrorCodes.BAD_ARGUMENT, reason);
}

const intersect = (lists: string[][]) => lists.reduce((a, b) => a.filter((x) => b.includes(x)));

/**
 * The world's prompt lists for the concepts, as the demo's calibration chose them (docs/esd.md):
 * the concepts as the captions phrase them, the prompts the preservation term keeps and those only
 * the closed-form refit keeps. Undefined (with a note) off the shapes world or for another concept.
 */
export function worldLists(ctx: Pick<PrepareContext<unknown>, 'model' | 'concepts' | 'note'>) {
  if (ctx.model.world !== 'shapes') {
    ctx.note('worldPrompts: this model is not of the shapes world; the concepts are trained as given and nothing is kept by it');
    return undefined;
  }
  try {
    const sets = ctx.concepts.map((c) => conceptPromptSets(c));
    const targets = sets.map((s) => s.eraseText);
    const preserve = intersect(sets.map((s) => s.preserve)).filter((p) => !targets.includes(p));
    const projectionKeep = intersect(sets.map((s) => s.preserveCaptions)).filter((p) => !targets.includes(p) && !preserve.includes(p));
    return { targets, preserve, projectionKeep };
  } catch {
    ctx.note(`worldPrompts: '${ctx.concepts.join(', ')}' is not a concept of the shapes world; trained as given, nothing kept by it`);
    return undefined;
  }
}

function prepare(ctx: PrepareContext<EsdOptions>): NativeRequest {
  const o = ctx.options;
  let targets = ctx.concepts;
  let preserve = o.preserve;
  let projectionKeep = o.projectionKeep;
  if (o.worldPrompts) {
    const world = worldLists(ctx);
    if (world) {
      targets = world.targets;
      // Explicit lists win; --preserve alone replaces both, as in the demo.
      if (!ctx.explicit.has('preserve')) preserve = world.preserve;
      if (!ctx.explicit.has('preserve') && !ctx.explicit.has('projectionKeep')) projectionKeep = world.projectionKeep;
    }
  }
  // Weight 0 is plain ESD: no preservation term and the reference's random stream.
  const kept = o.preserveWeight > 0 || o.preserveProjection > 0 ? preserve.map((p) => p.trim()) : [];
  const keptByProjection = o.preserveProjection > 0 ? projectionKeep.map((p) => p.trim()) : [];
  if (o.preserveProjection > 0 && kept.length + keptByProjection.length === 0)
    badArg('preserveProjection needs prompts to keep: give preserve (e.g. --preserve "" --preserve "a square")');
  const drawn = o.preserveWeight > 0 ? kept : [];
  for (const p of [...kept, ...keptByProjection]) if (targets.includes(p)) badArg(`'${p}' is both a concept to erase and a prompt to preserve`);
  const prompts: Record<string, string[]> = {
    concepts: targets,
    train: o.eraseFrom ? targets.map(() => o.eraseFrom!) : targets,
    uncond: [''],
  };
  if (drawn.length) prompts.preserve = drawn;
  if (o.preserveProjection > 0) prompts.projection = [...kept, ...keptByProjection];
  return {
    prompts,
    plan: erasureSamplingPlan(ctx.pipe.schedulerConfig, o.ddimSteps),
    options: { eta: o.eta, startGuidance: o.startGuidance, sampleWith: o.sampleWith, preserveWeight: o.preserveWeight, preserveProjection: o.preserveProjection, projectionWeighting: o.projectionWeighting },
    hyperparameters: {
      eta: o.eta,
      startGuidance: o.startGuidance,
      ddimSteps: o.ddimSteps,
      sampleWith: o.sampleWith,
      eraseFrom: o.eraseFrom ?? null,
      trainedOn: targets,
      preserve: kept,
      preserveWeight: drawn.length ? o.preserveWeight : 0,
      preserveProjection: o.preserveProjection,
      projectionKeep: keptByProjection,
      projectionWeighting: o.projectionWeighting,
      worldPrompts: o.worldPrompts,
    },
  };
}

/** ESD's native seconds as the reference script reports them (scripts/esd_reference.py; prompt-memory's reference reports the same parts). */
export function esdBreakdown(s: Record<string, number>) {
  return {
    sampling: s.sampling ?? 0,
    frozenPredictions: s.frozenPredictions ?? 0,
    trainedForwardBackward: (s.trainedForward ?? 0) + (s.backward ?? 0),
    optimizer: s.optimizer ?? 0,
  };
}

const VARIANTS = [
  ['esd-x', 'ESD-x: cross-attention (attn2.*)'],
  ['esd-x-strict', 'ESD-x strict: cross-attention keys and values (attn2.to_k, attn2.to_v)'],
  ['esd-u', 'ESD-u: every UNet parameter but cross-attention, the time embedding and the output layers'],
  ['esd-self', 'ESD on self-attention (attn1.*)'],
  ['esd-all', 'ESD on every UNet parameter'],
] as const;

/** The ESD variants differ only in what they train (their parameter presets, src/erase/params.ts). */
export const ESD_METHODS: ErasureMethod<typeof esdOptions>[] = VARIANTS.map(([id, summary]) =>
  registerMethod({ id, native: 'esd', summary, options: esdOptions, referenceDefaults: { ...REFERENCE, params: id }, prepare, breakdown: esdBreakdown }),
);
