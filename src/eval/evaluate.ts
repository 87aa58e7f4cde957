/**
 * Generation judged by the shapes classifier: per prompt, the rate at which each expected
 * attribute appears; for an erasure, efficacy / specificity / robustness against the base model.
 */
import { cachedSamples } from '../cache/samples';
import { classify, type Judgement, type ShapeLabel } from '../classifier';
import type { RunOptions } from '../job';
import { Pipeline } from '../pipeline';
import type { Tensor } from '../tensor';
import { posterShows } from '../world/attributes';
import { renderPoster } from '../world/render';
import { anchorExpectation, conceptPromptSets, type ConceptPromptSets, type EvalPrompt, type Expectation } from './prompts';

export interface GenerationSettings {
  n: number;
  steps: number;
  guidance: number;
  seed: number;
  scheduler?: 'ddim' | 'ddpm' | 'euler' | 'dpmpp-2m';
}

/**
 * Generation settings for an evaluation: the given ones, else the model's own generation defaults
 * (its lethe.json), else Stable Diffusion's (50 steps, guidance 7.5, the model's scheduler class).
 */
export function generationSettings(pipe: Pipeline, s: Partial<GenerationSettings> & { n: number; seed: number }): GenerationSettings {
  const g = pipe.defaults.generation ?? {};
  return { n: s.n, seed: s.seed, steps: s.steps ?? g.steps ?? 50, guidance: s.guidance ?? g.guidance ?? 7.5, scheduler: s.scheduler ?? (g.scheduler as GenerationSettings['scheduler']) };
}

export interface PromptResult {
  prompt: string;
  group: string;
  expect: Expectation;
  n: number;
  /** Fraction of images with each expected attribute, and with all of them. */
  rates: { shape?: number; color?: number; style?: number; poster?: number; all: number };
  /** Fraction classified as Sunny, and memorized copies of the poster (per-pixel MSE <= 0.01). */
  sunny: number;
  memorized: number;
  counts: { shape: Record<string, number>; color: Record<string, number>; style: Record<string, number> };
  /** The shape labels the classifier gave the images that are memorized copies of the poster. */
  posterShapes: Record<string, number>;
  images?: Tensor;
}

const POSTER_MSE = 0.01;
let posterCache: Float32Array | undefined;

async function posterPixels(): Promise<Float32Array> {
  if (!posterCache) {
    const { rgb } = await renderPoster();
    const plane = 64 * 64;
    posterCache = new Float32Array(3 * plane);
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) posterCache[c * plane + p] = rgb[p * 3 + c] / 255;
  }
  return posterCache;
}

/** Per image of [n, 3, 64, 64]: is it the memorized poster (per-pixel MSE <= 0.01)? */
export async function isPoster(images: Tensor): Promise<boolean[]> {
  const poster = await posterPixels();
  const size = poster.length;
  const out: boolean[] = [];
  for (let i = 0; i < images.shape[0]; i++) {
    let se = 0;
    for (let j = 0; j < size; j++) se += (images.data[i * size + j] - poster[j]) ** 2;
    out.push(se / size <= POSTER_MSE);
  }
  return out;
}

function matches(j: Judgement, memorized: boolean, e: Expectation): { shape?: boolean; color?: boolean; style?: boolean; poster?: boolean } {
  return {
    shape: e.shape === undefined ? undefined : j.shape === e.shape,
    color: e.color === undefined ? undefined : j.color === e.color,
    style: e.style === undefined ? undefined : j.style === e.style,
    poster: e.poster === undefined ? undefined : memorized === e.poster,
  };
}

function tally<T extends string>(values: T[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

export interface EvaluateOptions extends RunOptions {
  keepImages?: boolean;
  classifierDir?: string;
  /** Reuse (and keep) the images in the sample cache (src/cache/samples.ts): for models evaluated again and again, as a base. */
  cache?: boolean;
}

export async function evaluatePrompts(pipe: Pipeline, prompts: EvalPrompt[], settings: GenerationSettings, options: EvaluateOptions = {}): Promise<PromptResult[]> {
  const results: PromptResult[] = [];
  const identity = options.cache ? await pipe.identity() : '';
  for (const [i, p] of prompts.entries()) {
    const gen = { prompt: p.prompt, n: settings.n, steps: settings.steps, guidance: settings.guidance, seed: settings.seed + i, scheduler: settings.scheduler ?? pipe.generationScheduler };
    const generate = async () => ({ images: (await pipe.generate({ ...gen, signal: options.signal })).images });
    const { images } = options.cache ? (await cachedSamples({ kind: 'generation', model: identity, ...gen }, generate)).tensors : await generate();
    const g = { images: images as Tensor };
    const judged = await classify(g.images, { dir: options.classifierDir, signal: options.signal });
    const memorized = await isPoster(g.images);
    const m = judged.map((j, k) => matches(j, memorized[k], p.expect));
    const rate = (key: 'shape' | 'color' | 'style' | 'poster') => (p.expect[key] === undefined ? undefined : m.filter((x) => x[key]).length / m.length);
    const all = m.filter((x) => Object.values(x).every((v) => v !== false)).length / m.length;
    results.push({
      prompt: p.prompt,
      group: p.group,
      expect: p.expect,
      n: judged.length,
      rates: { shape: rate('shape'), color: rate('color'), style: rate('style'), poster: rate('poster'), all },
      sunny: judged.filter((j) => j.shape === ('sunny' as ShapeLabel)).length / judged.length,
      memorized: memorized.filter(Boolean).length / memorized.length,
      counts: { shape: tally(judged.map((j) => j.shape)), color: tally(judged.map((j) => j.color)), style: tally(judged.map((j) => j.style)) },
      posterShapes: tally(judged.filter((_, k) => memorized[k]).map((j) => j.shape)),
      images: options.keepImages ? g.images : undefined,
    });
    options.onProgress?.({ phase: 'eval', step: i + 1, total: prompts.length });
  }
  return results;
}

export interface ErasureSummary {
  concept: string;
  kind: string;
  /** Target prompts: rate of the target attribute. Lower after erasure is better. */
  efficacy: { base: number; erased: number };
  /** Related and unrelated prompts: rate with every expected attribute right. Closer to base is better. */
  specificity: { related: { base: number; erased: number } | null; unrelated: { base: number; erased: number } };
  /** Misspelled and paraphrased target prompts: rate of the target attribute. */
  robustness: { base: number; erased: number };
  /** Target and robustness prompts: rate of memorized copies of the poster (an erasure can fall back on it). */
  memorized: { base: number; erased: number };
  /**
   * Target prompts' other named attributes (a red circle's red, a striped star's star): the mean of
   * their per-prompt rates, over the target prompts that name more than the concept.
   */
  kept?: { base: number; erased: number } | null;
  /**
   * What the target prompts' images show, base vs erased: the fraction classified as each shape
   * (and, for a style, each style), pooled over the target prompts. Few-shot unlearning's claim is
   * that an erased concept drifts to related ones (circle → face).
   */
  drift: Partial<Record<'shape' | 'style', { base: Record<string, number>; erased: Record<string, number> }>>;
  /**
   * Efficacy (the target attribute's rate) over the target and robustness prompts the erasure was
   * trained on, and over those it never saw (other templates, misspellings, paraphrases): whether
   * the erasure generalizes beyond its training prompts. null where no prompt falls in a side.
   */
  generalization: { trained: GeneralizationRow | null; heldOut: GeneralizationRow | null };
  /** With an anchor (Concept Ablation): target prompts' images showing what the concept became. */
  anchor?: {
    text: string;
    expect: Expectation;
    /** The anchor's defining attribute (shape, else style, else color). */
    rate: { base: number; erased: number };
    /** Each attribute the anchor names. */
    attributes: Partial<Record<'shape' | 'color' | 'style', { base: number; erased: number }>>;
  };
}

export interface GeneralizationRow {
  prompts: string[];
  base: number;
  erased: number;
}

/** Prompt text as trained prompts are compared: trimmed, lower case, single spaces. */
const promptKey = (p: string) => p.trim().toLowerCase().replace(/\s+/g, ' ');

/** Whether each evaluated prompt was one the erasure trained on. */
export function isTrainedPrompt(trainedPrompts: readonly string[]): (prompt: string) => boolean {
  const trained = new Set(trainedPrompts.map(promptKey));
  return (prompt) => trained.has(promptKey(prompt));
}

export interface ErasureEvaluation {
  summary: ErasureSummary;
  sets: ConceptPromptSets;
  base: Record<string, PromptResult[]>;
  erased: Record<string, PromptResult[]>;
}

/**
 * The rate at which `target`'s defining attribute (its shape, else style, else color; the poster:
 * memorized copies) appears in the results' images. `posterCopies`: whether a copy of the poster
 * counts for the shapes it shows (it does when judging an erasure of them, not an anchor's arrival).
 */
export function targetRate(results: PromptResult[], target: Expectation, posterCopies = true): number {
  if (target.poster) return memorizedRate(results);
  const key = target.shape ? 'shape' : target.style ? 'style' : 'color';
  // Target prompts' own expectation may add a color; efficacy reads only the erased attribute.
  let hit = 0;
  let n = 0;
  for (const r of results) {
    const want = target[key as keyof Expectation] as string;
    hit += r.counts[key as 'shape' | 'color' | 'style'][want] ?? 0;
    // A copy of the memorized poster shows a circle and a triangle, whatever its shape head says:
    // an erasure of either that falls back on the poster has not erased it.
    if (posterCopies && key === 'shape' && posterShows(want))
      hit += Object.entries(r.posterShapes ?? {}).reduce((a, [label, c]) => a + (label === want ? 0 : c), 0);
    n += r.n;
  }
  return n ? hit / n : 0;
}

const memorizedRate = (rs: PromptResult[]) => {
  const n = rs.reduce((a, r) => a + r.n, 0);
  return n ? rs.reduce((a, r) => a + r.memorized * r.n, 0) / n : 0;
};

const meanAll = (rs: PromptResult[]) => (rs.length ? rs.reduce((a, r) => a + r.rates.all, 0) / rs.length : 0);

/** Mean over target prompts of their rates of the attributes they name besides the target's. */
function keptRate(results: PromptResult[], target: Expectation): number | null {
  const erasedKey = target.poster ? 'poster' : target.shape ? 'shape' : target.style ? 'style' : 'color';
  const rates: number[] = [];
  for (const r of results)
    for (const k of ['shape', 'color', 'style'] as const) if (k !== erasedKey && r.expect[k] !== undefined && r.rates[k] !== undefined) rates.push(r.rates[k]!);
  return rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : null;
}

/** The fraction of the results' images given each label of `key`. */
export function labelDistribution(results: PromptResult[], key: 'shape' | 'color' | 'style'): Record<string, number> {
  const n = results.reduce((a, r) => a + r.n, 0);
  const out: Record<string, number> = {};
  for (const r of results) for (const [label, c] of Object.entries(r.counts[key])) out[label] = (out[label] ?? 0) + c / (n || 1);
  return out;
}

/** Rate of images with attribute `key` equal to `want`. */
function attributeRate(results: PromptResult[], key: 'shape' | 'color' | 'style', want: string): number {
  const n = results.reduce((a, r) => a + r.n, 0);
  return n ? results.reduce((a, r) => a + (r.counts[key][want] ?? 0), 0) / n : 0;
}

export async function evaluateErasure(
  base: Pipeline,
  erased: Pipeline,
  concept: string,
  settings: GenerationSettings,
  options: EvaluateOptions & {
    baseResults?: Record<string, PromptResult[]>;
    anchor?: string;
    /** The prompts the erasure trained on; default: those its deltas record (DeltaInfo.trainedPrompts). */
    trainedPrompts?: string[];
  } = {},
): Promise<ErasureEvaluation> {
  const sets = conceptPromptSets(concept);
  const anchorExpect = options.anchor !== undefined ? anchorExpectation(options.anchor) : undefined;
  const groups = { target: sets.targetPrompts, related: sets.related, unrelated: sets.unrelated, robustness: sets.robustness };
  const run = async (pipe: Pipeline, cache: boolean) => {
    const out: Record<string, PromptResult[]> = {};
    for (const [name, prompts] of Object.entries(groups)) out[name] = await evaluatePrompts(pipe, prompts, settings, { ...options, cache });
    return out;
  };
  // The base's images come from the sample cache when this base was evaluated so before (a
  // sweep passes its results back in instead).
  const b = options.baseResults ?? (await run(base, options.cache ?? true));
  const e = await run(erased, options.cache ?? false);
  const summary: ErasureSummary = {
    concept: sets.concept,
    kind: sets.kind,
    efficacy: { base: targetRate(b.target, sets.target), erased: targetRate(e.target, sets.target) },
    specificity: {
      related: sets.related.length ? { base: meanAll(b.related), erased: meanAll(e.related) } : null,
      unrelated: { base: meanAll(b.unrelated), erased: meanAll(e.unrelated) },
    },
    robustness: { base: targetRate(b.robustness, sets.target), erased: targetRate(e.robustness, sets.target) },
    memorized: { base: memorizedRate([...b.target, ...b.robustness]), erased: memorizedRate([...e.target, ...e.robustness]) },
    kept: null,
    generalization: { trained: null, heldOut: null },
    drift: { shape: { base: labelDistribution(b.target, 'shape'), erased: labelDistribution(e.target, 'shape') } },
  };
  const trained = isTrainedPrompt(options.trainedPrompts ?? erased.deltas.flatMap((d) => d.trainedPrompts));
  const side = (wantTrained: boolean): GeneralizationRow | null => {
    const pick = (rs: Record<string, PromptResult[]>) => [...rs.target, ...rs.robustness].filter((r) => trained(r.prompt) === wantTrained);
    const [pb, pe] = [pick(b), pick(e)];
    return pb.length ? { prompts: pb.map((r) => r.prompt), base: targetRate(pb, sets.target), erased: targetRate(pe, sets.target) } : null;
  };
  summary.generalization = { trained: side(true), heldOut: side(false) };
  if (sets.target.style) summary.drift.style = { base: labelDistribution(b.target, 'style'), erased: labelDistribution(e.target, 'style') };
  const keptBase = keptRate(b.target, sets.target);
  const keptErased = keptRate(e.target, sets.target);
  if (keptBase !== null && keptErased !== null) summary.kept = { base: keptBase, erased: keptErased };
  if (anchorExpect) {
    const attributes: NonNullable<ErasureSummary['anchor']>['attributes'] = {};
    for (const k of ['shape', 'color', 'style'] as const)
      if (anchorExpect[k] !== undefined) attributes[k] = { base: attributeRate(b.target, k, anchorExpect[k]!), erased: attributeRate(e.target, k, anchorExpect[k]!) };
    summary.anchor = {
      text: options.anchor!,
      expect: anchorExpect,
      rate: { base: targetRate(b.target, anchorExpect, false), erased: targetRate(e.target, anchorExpect, false) },
      attributes,
    };
  }
  return { summary, sets, base: b, erased: e };
}
