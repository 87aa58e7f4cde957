/**
 * ESD-x / ESD-u and variants (Gandikota et al., ICCV 2023, "Erasing Concepts from Diffusion
 * Models"): TypeScript prepares prompts, embeddings, the DDIM plan and the delta file's metadata;
 * the native loop (native/erase/esd.cc) does the training.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';
import { runNativeJob, type RunOptions } from '../job';
import { nativeInfo } from '../info';
import { Pipeline, type ComputeDtype } from '../pipeline';
import { makePlan } from '../schedulers';
import { DELTA_FORMAT, DELTA_FORMAT_VERSION } from './delta';
import { modelFingerprint } from './fingerprint';

export const ESD_METHODS = ['esd-x', 'esd-x-strict', 'esd-u', 'esd-self', 'esd-all'] as const;
export type EsdMethod = (typeof ESD_METHODS)[number];

/** What each method trains, by diffusers parameter names. */
export const ESD_PARAMETER_SETS: Record<EsdMethod, string> = {
  'esd-x': 'every cross-attention parameter (attn2.*)',
  'esd-x-strict': 'cross-attention keys and values only (attn2.to_k, attn2.to_v)',
  'esd-u': 'every UNet parameter except cross-attention (attn2), the time embedding and the output layers (conv_norm_out, conv_out)',
  'esd-self': 'self-attention (attn1.*)',
  'esd-all': 'every UNet parameter',
};

/** The reference implementation's defaults. */
export const ESD_DEFAULTS = { eta: 1, iterations: 1000, lr: 1e-5, startGuidance: 3, ddimSteps: 50, seed: 0 };

export interface EraseOptions extends RunOptions {
  model: string;
  method: EsdMethod;
  /** One concept, or several (a list, or comma-separated); each iteration picks one at random. */
  concept: string | string[];
  out: string;
  eta?: number;
  iterations?: number;
  lr?: number;
  startGuidance?: number;
  ddimSteps?: number;
  seed?: number;
  device?: string;
  dtype?: ComputeDtype;
  /** Sample x_t with the model being trained (the reference) or with the frozen one (diffusers' newer script). */
  sampleWith?: 'trained' | 'frozen';
  /** Sample and train on this prompt; the target is still built from the concept. */
  eraseFrom?: string;
  /**
   * Prompts whose predictions are kept (not in the reference): each iteration adds
   * preserveWeight * MSE(eps_theta(x,t,p), eps*(x,t,p)) for one of them at random, on the same x
   * and t as the erasure term; the projection below keeps them too. '' is the unconditional
   * prompt, which every guided generation uses.
   */
  preserve?: string[];
  preserveWeight?: number;
  /**
   * Closed-form preservation (not in the reference), applied to the finished delta: each
   * cross-attention key/value delta D (attn2.to_k / to_v, which read the text encoder's token
   * states) becomes D·Ae·(Ae + a·Ap + r·I)⁻¹, the least-squares edit that keeps what training did
   * to the erased prompt's token states (second moment Ae) and undoes it, in proportion to a =
   * preserveProjection, on the kept prompts' states (Ap: `preserve` and `projectionKeep`). 0
   * (default): off. Needs kept prompts and a method that trains to_k / to_v (esd-x, esd-x-strict,
   * esd-all).
   */
  preserveProjection?: number;
  /** Further prompts the projection keeps, beyond `preserve` (the preservation term never draws them). */
  projectionKeep?: string[];
  /** Write a checkpoint every N iterations (0: never); `resume` continues from it. */
  checkpointEvery?: number;
  resume?: boolean;
  /** A pipeline already loaded from `model`, to skip loading it again. */
  pipeline?: Pipeline;
}

export interface EraseResult {
  delta: string;
  report: string;
  method: EsdMethod;
  concepts: string[];
  losses: number[];
  trainedParameters: number;
  seconds: number;
  breakdown: { sampling: number; frozenPredictions: number; trainedForwardBackward: number; optimizer: number };
}

function badArg(reason: string): never {
  throw new LetheError(ErrorCodes.BAD_ARGUMENT, reason);
}

export function parseConcepts(concept: string | string[]): string[] {
  const list = (Array.isArray(concept) ? concept : concept.split(',')).map((c) => c.trim()).filter((c) => c.length > 0);
  if (list.length === 0) badArg('no concept to erase: give --concept TEXT (several: comma-separated)');
  return list;
}

function checkNumber(value: number, what: string, ok: (v: number) => boolean, expected: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) badArg(`${what} must be ${expected}, got ${value}`);
  return value;
}

function reportPath(delta: string): string {
  return delta.replace(/\.safetensors$/i, '') + '.report.json';
}

export async function erase(o: EraseOptions): Promise<EraseResult> {
  const started = Date.now();
  if (!ESD_METHODS.includes(o.method)) badArg(`unknown method '${o.method}' (${ESD_METHODS.join(', ')})`);
  const concepts = parseConcepts(o.concept);
  if (!o.out || !o.out.endsWith('.safetensors')) badArg('out must be a .safetensors file path');
  const outDir = path.dirname(path.resolve(o.out));
  if (!fs.existsSync(outDir)) throw new LetheError(ErrorCodes.IO, `${outDir}: folder does not exist`);
  const eta = checkNumber(o.eta ?? ESD_DEFAULTS.eta, 'eta', () => true, 'a finite number');
  const iterations = checkNumber(o.iterations ?? ESD_DEFAULTS.iterations, 'iterations', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1');
  const lr = checkNumber(o.lr ?? ESD_DEFAULTS.lr, 'lr', (v) => v > 0, 'a positive number');
  const startGuidance = checkNumber(o.startGuidance ?? ESD_DEFAULTS.startGuidance, 'startGuidance', () => true, 'a finite number');
  const ddimSteps = checkNumber(o.ddimSteps ?? ESD_DEFAULTS.ddimSteps, 'ddimSteps', (v) => Number.isInteger(v) && v >= 1 && v <= 1000, 'an integer in 1..1000');
  const seed = checkNumber(o.seed ?? ESD_DEFAULTS.seed, 'seed', (v) => Number.isSafeInteger(v) && v >= 0, 'a non-negative integer');
  const checkpointEvery = checkNumber(o.checkpointEvery ?? 0, 'checkpointEvery', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0');
  const sampleWith = o.sampleWith ?? 'trained';
  if (sampleWith !== 'trained' && sampleWith !== 'frozen') badArg("sampleWith must be 'trained' or 'frozen'");
  if (o.eraseFrom !== undefined && o.eraseFrom.trim() === '') badArg('eraseFrom is an empty prompt');
  const preserveWeight = checkNumber(o.preserveWeight ?? 1, 'preserveWeight', (v) => v >= 0, 'a number >= 0');
  const preserveProjection = checkNumber(o.preserveProjection ?? 0, 'preserveProjection', (v) => v >= 0, 'a number >= 0');
  // Weight 0 is plain ESD: no preservation term and the reference's random stream.
  const preserve = preserveWeight > 0 || preserveProjection > 0 ? (o.preserve ?? []).map((p) => p.trim()) : [];
  const projectionKeep = preserveProjection > 0 ? (o.projectionKeep ?? []).map((p) => p.trim()) : [];
  if (preserveProjection > 0 && preserve.length + projectionKeep.length === 0) badArg('preserveProjection needs prompts to keep: give preserve (e.g. --preserve "" --preserve "a square")');
  // The term draws from `preserve` (none with weight 0); the projection keeps both lists.
  const drawn = preserveWeight > 0 ? preserve : [];
  for (const p of [...preserve, ...projectionKeep]) if (concepts.includes(p)) badArg(`'${p}' is both a concept to erase and a prompt to preserve`);

  const pipe = o.pipeline ?? (await Pipeline.load(o.model, { device: o.device, dtype: o.dtype, signal: o.signal }));
  if (pipe.deltas.length) badArg('the pipeline already has deltas applied; erase from the base model');
  const uncond = await pipe.encodePrompt(['']);
  const conceptEmb = await Promise.all(concepts.map((c) => pipe.encodePrompt([c])));
  const keptEmb = await Promise.all(preserve.map((p) => pipe.encodePrompt([p])));
  const preserveEmb = drawn.length ? keptEmb : [];
  const projectionEmb = preserveProjection > 0 ? [...keptEmb, ...(await Promise.all(projectionKeep.map((p) => pipe.encodePrompt([p]))))] : [];
  const trainEmb = o.eraseFrom ? await Promise.all(concepts.map(() => pipe.encodePrompt([o.eraseFrom!]))) : conceptEmb;
  const plan = makePlan(pipe.schedulerConfig, { scheduler: 'ddim', steps: ddimSteps });
  const trainTimesteps = (pipe.schedulerConfig as { num_train_timesteps?: number }).num_train_timesteps ?? 1000;
  const fingerprint = await modelFingerprint(pipe.dir);
  const hyperparameters = { eta, iterations, lr, startGuidance, ddimSteps, seed, sampleWith, eraseFrom: o.eraseFrom ?? null, preserve, preserveWeight: drawn.length ? preserveWeight : 0, preserveProjection, projectionKeep, dtype: pipe.info.dtype };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version = (require('../../package.json') as { version: string }).version;
  const metadata: Record<string, string> = {
    format: DELTA_FORMAT,
    format_version: DELTA_FORMAT_VERSION,
    method: o.method,
    concepts: JSON.stringify(concepts),
    anchor: '',
    hyperparameters: JSON.stringify(hyperparameters),
    base_fingerprint: fingerprint,
    base_model: pipe.dir,
    lethe_version: version,
    created: new Date().toISOString(),
  };
  const checkpoint = o.out.replace(/\.safetensors$/i, '') + '.ckpt.safetensors';
  const r = await runNativeJob(
    (opts) =>
      pipe.nativeHandle.esd({
        ...opts,
        paramSet: o.method,
        concepts: conceptEmb,
        trainPrompts: trainEmb,
        preserve: preserveEmb.length ? preserveEmb : undefined,
        preserveWeight,
        preserveProjection,
        projectionKeep: projectionEmb.length ? projectionEmb : undefined,
        uncond,
        plan,
        eta,
        iterations,
        lr,
        startGuidance,
        trainTimesteps,
        seed,
        sampleWith,
        latentShape: [pipe.info.unet.inChannels, pipe.sampleSize, pipe.sampleSize],
        out: o.out,
        checkpoint,
        checkpointEvery,
        resume: o.resume ?? false,
        metadata,
      }),
    { onProgress: o.onProgress, signal: o.signal },
  );
  const seconds = (Date.now() - started) / 1000;
  const report = reportPath(o.out);
  const info = nativeInfo();
  const body = {
    kind: 'lethe-erase-report',
    delta: path.resolve(o.out),
    method: o.method,
    parameterSet: ESD_PARAMETER_SETS[o.method],
    concepts,
    model: pipe.dir,
    baseFingerprint: fingerprint,
    hyperparameters,
    trainedParameters: r.trainedParameters,
    lossCurve: r.losses,
    wallSeconds: seconds,
    breakdownSeconds: r.seconds,
    device: pipe.info.device,
    versions: { lethe: version, torch: info.torchVersion, node: process.version },
    created: metadata.created,
  };
  const tmp = `${report}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(body, null, 2) + '\n');
  fs.renameSync(tmp, report);
  return { delta: o.out, report, method: o.method, concepts, losses: r.losses, trainedParameters: r.trainedParameters, seconds, breakdown: r.seconds };
}
