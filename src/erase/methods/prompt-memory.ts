/**
 * Learnable prompt memory (Bui et al., arXiv 2403.12326, "Removing Undesirable Concepts in
 * Text-to-Image Diffusion Models with Learnable Prompts"): m key/value tokens joined to the text in
 * the chosen cross-attention layers take the concept's knowledge (knowledge-transfer steps train
 * them to keep producing it) while the weights are erased ESD-style with the memory in place.
 * TypeScript builds the prompt groups, the DDIM plan and the memory's placement, and for continual
 * erasure (`extend`) reads the earlier delta to start from; the native loop
 * (native/erase/prompt_memory.cc) trains. docs/prompt-memory.md has our reading of the paper and
 * the calibration.
 */
import { z } from 'zod';
import { ErrorCodes, LetheError } from '../../errors';
import { loadSafetensors, readSafetensorsHeader } from '../../io/safetensors';
import { erasureSamplingPlan } from '../../schedulers';
import type { Tensor } from '../../tensor';
import { checkDeltasFor } from '../delta';
import { registerMethod, type NativeRequest, type PrepareContext } from '../method';
import { esdBreakdown, worldLists } from './esd';

export const promptMemoryOptions = z.object({
  promptTokens: z.number().int().min(1).max(1024).describe('tokens m of the learnable prompt (keys and values, in the text-embedding space)'),
  placement: z
    .string()
    .min(1)
    .describe('which cross-attention layers share the prompt: mid, midout, inmidout (= all), in, out, inmid, or globs on attn2 layer names'),
  transferIterations: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .describe('knowledge-transfer steps (the prompt learns to keep producing the concept), spread evenly among the erasure iterations'),
  promptLr: z.number().positive().finite().describe("the prompt's learning rate (the weights take lr)"),
  erasureTrainsPrompt: z.boolean().describe('the erasure steps train the prompt too (with the weights), besides the transfer steps'),
  eta: z.number().finite().describe('negative guidance η of the erasure target ε*(x,t,"") − η·(ε*(x,t,c) − ε*(x,t,""))'),
  startGuidance: z.number().finite().describe('guidance while sampling x_t'),
  ddimSteps: z.number().int().min(1).max(1000).describe('DDIM steps S of the sampled trajectories'),
  preserve: z.array(z.string()).describe('prompts whose predictions the erasure steps keep (one per step, weight preserveWeight; "" is the unconditional prompt)'),
  preserveWeight: z.number().min(0).finite().describe('weight of the preservation term (0: none)'),
  worldPrompts: z
    .boolean()
    .describe("on a model of the shapes world: train on the concept as its captions phrase it ('a circle') and keep the world's other concepts (as ESD's world prompts)"),
  extend: z
    .string()
    .min(1)
    .optional()
    .describe('continual erasure: an earlier prompt-memory delta of this model to continue (its weights and prompt are the start; the new delta holds both erasures)'),
});

export type PromptMemoryOptions = z.infer<typeof promptMemoryOptions>;

/**
 * What the paper's released settings give (ESD's loop settings; 10 tokens in the mid block; the
 * weights' and the prompt's lr 1e-5), for real checkpoints. The alternation (one transfer step per
 * erasure step) is our reading (docs/prompt-memory.md).
 */
const REFERENCE = {
  iterations: 1000,
  lr: 1e-5,
  seed: 0,
  params: 'esd-x',
  promptTokens: 10,
  placement: 'mid',
  transferIterations: 1000,
  promptLr: 1e-5,
  erasureTrainsPrompt: false,
  eta: 1,
  startGuidance: 3,
  ddimSteps: 50,
  preserve: [] as string[],
  preserveWeight: 1,
  worldPrompts: false,
};

function badArg(reason: string): never {
  throw new LetheError(ErrorCodes.BAD_ARGUMENT, reason);
}

/**
 * The earlier delta continual erasure starts from: a prompt-memory delta of this model (checked by
 * fingerprint) with the same prompt size and placement and tensors this run trains (the native job
 * refuses any other). Returns its tensors and what the new delta records about it.
 */
async function continued(ctx: PrepareContext<PromptMemoryOptions>, file: string, hyperparameters: { promptTokens: number; placement: string }) {
  const [info] = await checkDeltasFor(ctx.pipe.dir, [file]);
  if (info.method !== 'prompt-memory') badArg(`extend: ${file} was made by ${info.method}; only a prompt-memory delta can be continued`);
  let theirs: { promptTokens?: number; placement?: string } = {};
  try {
    theirs = JSON.parse(info.metadata.hyperparameters ?? '{}');
  } catch {
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${file}: metadata 'hyperparameters' is not valid JSON`);
  }
  if (theirs.promptTokens !== hyperparameters.promptTokens || theirs.placement !== hyperparameters.placement)
    badArg(
      `extend: ${file} has a prompt of ${theirs.promptTokens} tokens placed '${theirs.placement}', this run ${hyperparameters.promptTokens} placed '${hyperparameters.placement}'; give the same promptTokens and placement`,
    );
  for (const c of ctx.concepts) if (info.concepts.includes(c)) badArg(`extend: '${c}' is already erased in ${file}`);
  readSafetensorsHeader(file);  // validated before its data is read
  const { tensors } = await loadSafetensors(file);
  const start: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (t.dtype !== 'float32') throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${file}: ${k} is ${t.dtype}, a Lethe delta holds float32`);
    start[k] = t as Tensor;
  }
  return { start, concepts: info.concepts };
}

async function prepare(ctx: PrepareContext<PromptMemoryOptions>): Promise<NativeRequest> {
  const o = ctx.options;
  let targets = ctx.concepts;
  let preserve = o.preserve;
  if (o.worldPrompts) {
    const world = worldLists(ctx);
    if (world) {
      targets = world.targets;
      if (!ctx.explicit.has('preserve')) preserve = world.preserve;
    }
  }
  const kept = o.preserveWeight > 0 ? preserve.map((p) => p.trim()) : [];
  for (const p of kept) if (targets.includes(p)) badArg(`'${p}' is both a concept to erase and a prompt to preserve`);
  const extended = o.extend ? await continued(ctx, o.extend, { promptTokens: o.promptTokens, placement: o.placement }) : undefined;
  const prompts: Record<string, string[]> = { concepts: targets, uncond: [''] };
  if (kept.length) prompts.preserve = kept;
  return {
    prompts,
    plan: erasureSamplingPlan(ctx.pipe.schedulerConfig, o.ddimSteps),
    memory: { tokens: o.promptTokens, layers: o.placement },
    start: extended?.start,
    iterations: o.iterations + o.transferIterations,
    options: {
      eta: o.eta,
      startGuidance: o.startGuidance,
      promptLr: o.promptLr,
      erasureTrainsPrompt: o.erasureTrainsPrompt,
      transferIterations: o.transferIterations,
      erasureIterations: o.iterations,
      preserveWeight: o.preserveWeight,
    },
    hyperparameters: {
      promptTokens: o.promptTokens,
      placement: o.placement,
      transferIterations: o.transferIterations,
      promptLr: o.promptLr,
      erasureTrainsPrompt: o.erasureTrainsPrompt,
      eta: o.eta,
      startGuidance: o.startGuidance,
      ddimSteps: o.ddimSteps,
      trainedOn: targets,
      preserve: kept,
      preserveWeight: kept.length ? o.preserveWeight : 0,
      worldPrompts: o.worldPrompts,
      extends: extended ? extended.concepts : [],
    },
    // The new delta holds every erasure it continues: its concepts are theirs and these.
    ...(extended ? { metadata: { concepts: JSON.stringify([...extended.concepts, ...ctx.concepts]) } } : {}),
  };
}

export const PROMPT_MEMORY_METHOD = registerMethod({
  id: 'prompt-memory',
  native: 'prompt-memory',
  summary: 'learnable prompt memory in cross-attention: the prompt takes the concept, the weights are erased against it (Bui et al.)',
  options: promptMemoryOptions,
  referenceDefaults: REFERENCE,
  addsExtras: true,
  prepare,
  breakdown: esdBreakdown,
});
