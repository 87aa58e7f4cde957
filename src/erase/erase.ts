/**
 * `erase()`: the one entry point of every erasure method (docs/adding-a-method.md). It resolves
 * the options (given > the model's measured defaults > the method's reference defaults), validates
 * them with the method's schema, lets the method turn them into prompt groups and native options,
 * runs the shared native job (native/erase/erasure_job.cc) and writes the report.
 */
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { ErrorCodes, LetheError } from '../errors';
import { nativeInfo } from '../info';
import { acquireOutputLock, removeStaleTemporaries } from '../io/temporaries';
import { runNativeJob, type RunOptions } from '../job';
import { MODEL_DEFAULTS_FILE } from '../models';
import { Pipeline, type ComputeDtype } from '../pipeline';
import type { Tensor } from '../tensor';
import { baseFingerprints, DELTA_FORMAT, DELTA_FORMAT_VERSION } from './delta';
import { getMethod, type CommonMethodOptions, type ErasureMethod } from './method';
import type { MethodOptions } from './methods';
import { resolveParams } from './params';
import './methods';  // registers every method

/** Where an option's value came from. */
export type OptionSource = 'given' | 'model' | 'reference';

export interface AppliedOptions {
  method: string;
  model: string;
  values: Record<string, unknown>;
  sources: Record<string, OptionSource>;
  /** How some options played out (e.g. a world prompt list that did not apply). */
  notes: string[];
}

export interface EraseOptions extends RunOptions, Partial<MethodOptions> {
  /** A diffusers folder, or 'default' for the bundled model. */
  model: string;
  /** A registered method (`methodIds()`); default: the model's own default method, else esd-x. */
  method?: string;
  /** One concept, or several (a list, or comma-separated). */
  concept: string | string[];
  /** The delta file to write (.safetensors); the report goes beside it. */
  out: string;
  iterations?: number;
  lr?: number;
  seed?: number;
  /** What is trained: a preset (esd-x, …), patterns (`unet:*.attn2.to_k.*,text_encoder:*.mlp.*`) or both. */
  params?: string | string[];
  /** Learnable memory tokens in cross-attention (0: none), trained with the selected parameters. */
  memoryTokens?: number;
  /** Which attn2 layers get them: all, in, mid, out, midout, inmid, or globs on layer names. */
  memoryLayers?: string;
  device?: string;
  dtype?: ComputeDtype;
  /** Write a checkpoint every N iterations (0: never); `resume` continues from it. */
  checkpointEvery?: number;
  resume?: boolean;
  /** A pipeline already loaded from `model`, to skip loading it again. */
  pipeline?: Pipeline;
  /** Called once options are resolved, before any training. */
  onApplied?: (applied: AppliedOptions) => void;
}

export interface EraseResult {
  delta: string;
  report: string;
  method: string;
  concepts: string[];
  losses: number[];
  /** Each objective's curve, when a method has several. */
  terms: Record<string, number[]>;
  trainedParameters: number;
  trainedTensors: string[];
  seconds: number;
  breakdown: Record<string, number>;
  applied: AppliedOptions;
}

interface NativeErasureResult {
  losses: number[];
  terms: Record<string, number[]>;
  trainedParameters: number;
  trainedTensors: string[];
  seconds: Record<string, number>;
}

/** Options of erase() that are not method options. */
const FRAMEWORK_KEYS = new Set(['model', 'method', 'concept', 'out', 'device', 'dtype', 'checkpointEvery', 'resume', 'pipeline', 'onApplied', 'onProgress', 'signal']);
const COMMON_KEYS = ['iterations', 'lr', 'seed', 'params', 'memoryTokens', 'memoryLayers'] as const;

const commonSchema = z.object({
  iterations: z.number().int().min(1).optional(),
  lr: z.number().finite().positive(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  params: z.union([z.string(), z.array(z.string())]),
  memoryTokens: z.number().int().min(0).max(1024),
  memoryLayers: z.string().min(1),
});

/** The framework's own defaults, below a method's reference defaults. */
const FRAMEWORK_DEFAULTS: Record<string, unknown> = { seed: 0, memoryTokens: 0, memoryLayers: 'all' };

/** Where memory tokens go: a placement (the learnable-prompt paper's in / mid / out) or globs on attn2 layer names. */
const MEMORY_PLACEMENTS: Record<string, string[]> = {
  all: ['*'],
  inmidout: ['*'],
  in: ['down_blocks.*'],
  mid: ['mid_block.*'],
  out: ['up_blocks.*'],
  midout: ['mid_block.*', 'up_blocks.*'],
  inmid: ['down_blocks.*', 'mid_block.*'],
};

export function memoryLayerGlobs(spec: string): string[] {
  if (MEMORY_PLACEMENTS[spec]) return MEMORY_PLACEMENTS[spec];
  const globs = spec.split(',').map((s) => s.trim()).filter(Boolean);
  for (const g of globs)
    if (!/[.*]/.test(g)) badArg(`memoryLayers: '${g}' is neither a placement (${Object.keys(MEMORY_PLACEMENTS).join(', ')}) nor a glob on attn2 layer names (mid_block.*)`);
  return globs;
}

function badArg(reason: string): never {
  throw new LetheError(ErrorCodes.BAD_ARGUMENT, reason);
}

export function parseConcepts(concept: string | string[]): string[] {
  const list = (Array.isArray(concept) ? concept : String(concept ?? '').split(',')).map((c) => c.trim()).filter((c) => c.length > 0);
  if (list.length === 0) badArg('no concept to erase: give --concept TEXT (several: comma-separated)');
  return list;
}

export function reportPath(delta: string): string {
  return delta.replace(/\.safetensors$/i, '') + '.report.json';
}

export function checkpointPath(delta: string): string {
  return delta.replace(/\.safetensors$/i, '') + '.ckpt.safetensors';
}

/** The model's default method: its lethe.json's, else esd-x. */
export function defaultMethodFor(pipe: Pipeline): string {
  return pipe.defaults.erase?.method ?? 'esd-x';
}

/** Given > the model's measured defaults (lethe.json) > the method's reference defaults. */
export function resolveOptions(method: ErasureMethod, pipe: Pipeline, given: Record<string, unknown>): AppliedOptions & { explicit: Set<string> } {
  const known = new Set([...COMMON_KEYS, ...Object.keys(method.options.shape)]);
  for (const [k, v] of Object.entries(given))
    if (v !== undefined && !FRAMEWORK_KEYS.has(k) && !known.has(k)) badArg(`'${k}' is not an option of ${method.id} (its options: ${[...known].join(', ')})`);
  const fromModel = (pipe.defaults.erase?.methods?.[method.id] ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(fromModel))
    if (!known.has(k)) throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${path.join(pipe.dir, MODEL_DEFAULTS_FILE)}: '${k}' is not an option of ${method.id}`);
  const values: Record<string, unknown> = {};
  const sources: Record<string, OptionSource> = {};
  const explicit = new Set<string>();
  for (const k of known) {
    if (given[k] !== undefined) {
      values[k] = given[k];
      sources[k] = 'given';
      explicit.add(k);
    } else if (fromModel[k] !== undefined) {
      values[k] = fromModel[k];
      sources[k] = 'model';
    } else if ((method.referenceDefaults as Record<string, unknown>)[k] !== undefined) {
      values[k] = (method.referenceDefaults as Record<string, unknown>)[k];
      sources[k] = 'reference';
    } else if (FRAMEWORK_DEFAULTS[k] !== undefined) {
      values[k] = FRAMEWORK_DEFAULTS[k];
      sources[k] = 'reference';
    }
  }
  const schema = commonSchema.extend(method.options.shape).strict();
  const r = schema.safeParse(values);
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = String(issue.path[0] ?? '');
    const where = sources[key] === 'model' ? ` (from ${path.join(pipe.dir, MODEL_DEFAULTS_FILE)})` : '';
    throw new LetheError(sources[key] === 'model' ? ErrorCodes.BAD_CHECKPOINT : ErrorCodes.BAD_ARGUMENT, `${issue.path.join('.') || method.id}: ${issue.message}${where}`);
  }
  const notes: string[] = [];
  if (pipe.defaults.erase?.methods && !pipe.defaults.erase.methods[method.id])
    notes.push(
      `this model has measured defaults for ${Object.keys(pipe.defaults.erase.methods).join(', ')} but not for ${method.id}: the reference's apply (chosen for Stable Diffusion checkpoints)`,
    );
  return { method: method.id, model: pipe.dir, values: r.data as Record<string, unknown>, sources, notes, explicit };
}

/** One paragraph for the terminal: which defaults applied. */
export function describeApplied(a: AppliedOptions): string {
  const group = (s: OptionSource) =>
    Object.entries(a.sources)
      .filter(([, src]) => src === s)
      .map(([k]) => `${k} ${JSON.stringify(a.values[k])}`)
      .join(', ');
  const lines = [`${a.method} on ${a.model}`];
  const model = group('model');
  if (model) lines.push(`  this model's measured defaults (${MODEL_DEFAULTS_FILE}): ${model}`);
  const ref = group('reference');
  if (ref) lines.push(`  the method's reference defaults: ${ref}`);
  const given = group('given');
  if (given) lines.push(`  given: ${given}`);
  for (const n of a.notes) lines.push(`  note: ${n}`);
  return lines.join('\n');
}

function packageVersion(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../package.json') as { version: string }).version;
}

export async function erase(o: EraseOptions): Promise<EraseResult> {
  const started = Date.now();
  if (o.method !== undefined) getMethod(o.method);  // an unknown method is refused before any work
  const concepts = parseConcepts(o.concept);
  if (!o.out || !o.out.endsWith('.safetensors')) badArg('out must be a .safetensors file path');
  const outDir = path.dirname(path.resolve(o.out));
  if (!fs.existsSync(outDir)) throw new LetheError(ErrorCodes.IO, `${outDir}: folder does not exist`);
  // One erasure per output at a time: a second one to the same delta is refused at once (it would
  // share the checkpoint and race for the file), saying which process holds it.
  const release = acquireOutputLock(o.out, 'an erasure');
  try {
    // A run killed mid-write (kill -9, power loss) left temporaries beside its outputs: gone now.
    removeStaleTemporaries([o.out, checkpointPath(o.out), reportPath(o.out)]);
    return await eraseTo(o, concepts, started);
  } finally {
    release();
  }
}

async function eraseTo(o: EraseOptions, concepts: string[], started: number): Promise<EraseResult> {
  const checkpointEvery = o.checkpointEvery ?? 0;
  if (!Number.isInteger(checkpointEvery) || checkpointEvery < 0) badArg(`checkpointEvery must be an integer >= 0, got ${checkpointEvery}`);

  const pipe = o.pipeline ?? (await Pipeline.load(o.model, { device: o.device, dtype: o.dtype, signal: o.signal }));
  if (pipe.deltas.length) badArg('the pipeline already has deltas applied; erase from the base model');
  const method = getMethod(o.method ?? defaultMethodFor(pipe));
  const applied = resolveOptions(method, pipe, o as unknown as Record<string, unknown>);
  const values = applied.values as CommonMethodOptions & Record<string, unknown>;
  const selection = resolveParams(method.parameterSelection ? method.parameterSelection(values as never, applied.explicit) : values.params, {
    textEncoderLayers: pipe.info.textEncoder.numLayers,
  });
  const req = await method.prepare({
    pipe,
    concepts,
    explicit: applied.explicit,
    options: values as never,
    model: pipe.defaults,
    note: (m) => applied.notes.push(m),
    signal: o.signal,
    onProgress: o.onProgress,
  });
  const iterations = req.iterations ?? values.iterations;
  if (!Number.isInteger(iterations) || iterations < 1) badArg(`${method.id}: give iterations (an integer >= 1)`);
  const { explicit: _explicit, ...appliedOut } = applied;
  o.onApplied?.(appliedOut);

  const prompts: Record<string, Tensor<'int64'>> = {};
  for (const [group, texts] of Object.entries(req.prompts)) if (texts.length) prompts[group] = pipe.tokenize(texts);
  const memoryTokens = req.memory?.tokens ?? (values.memoryTokens as number);
  const memoryLayers = req.memory?.layers ?? (values.memoryLayers as string);
  const memory = memoryTokens > 0 ? { tokens: memoryTokens, layers: memoryLayerGlobs(memoryLayers) } : undefined;
  const components = [...selection.components, ...(method.addsExtras || memory ? ['unet'] : [])];
  const fingerprints = await baseFingerprints(pipe.dir, components);
  const hyperparameters = {
    iterations,
    lr: values.lr,
    seed: values.seed,
    params: selection.spec,
    ...(memory && !req.memory ? { memoryTokens, memoryLayers } : {}),
    ...(req.hyperparameters ?? Object.fromEntries(Object.entries(values).filter(([k]) => !(COMMON_KEYS as readonly string[]).includes(k)))),
    dtype: pipe.info.dtype,
  };
  const version = packageVersion();
  const created = new Date().toISOString();
  const metadata: Record<string, string> = {
    format: DELTA_FORMAT,
    format_version: DELTA_FORMAT_VERSION,
    method: method.id,
    concepts: JSON.stringify(concepts),
    trained_prompts: JSON.stringify(req.trainedPrompts ?? req.concepts ?? concepts),
    anchor: '',
    hyperparameters: JSON.stringify(hyperparameters),
    parameter_selection: JSON.stringify(selection.patterns),
    base_fingerprints: JSON.stringify(fingerprints),
    base_model: pipe.dir,
    lethe_version: version,
    created,
    ...(req.metadata ?? {}),
  };
  // What a checkpoint must match to be resumed: every field on its own, so a refusal names it.
  const identity: Record<string, string> = {
    method: method.id,
    concepts: JSON.stringify(concepts),
    base_fingerprints: JSON.stringify(fingerprints),
    lethe_version: version,
  };
  for (const [k, v] of Object.entries(hyperparameters)) identity[`option.${k}`] = JSON.stringify(v);

  const r = (await runNativeJob(
    (opts) =>
      pipe.nativeHandle.erase({
        ...opts,
        method: method.native,
        options: req.options,
        params: selection.patterns,
        prompts,
        iterations,
        lr: values.lr,
        seed: values.seed,
        plan: req.plan,
        memory,
        start: req.start,
        latentShape: [pipe.info.unet.inChannels, pipe.sampleSize, pipe.sampleSize],
        trainTimesteps: (pipe.schedulerConfig as { num_train_timesteps?: number }).num_train_timesteps ?? 1000,
        out: o.out,
        checkpoint: checkpointPath(o.out),
        checkpointEvery,
        resume: o.resume ?? false,
        metadata,
        identity,
      }),
    { onProgress: o.onProgress, signal: o.signal },
  )) as NativeErasureResult;
  const seconds = (Date.now() - started) / 1000;
  const nativeSeconds = { ...(req.seconds ?? {}), ...r.seconds };
  const breakdown = method.breakdown ? method.breakdown(nativeSeconds) : nativeSeconds;
  const report = reportPath(o.out);
  const info = nativeInfo();
  const body = {
    kind: 'lethe-erase-report',
    delta: path.resolve(o.out),
    method: method.id,
    summary: method.summary,
    concepts,
    model: pipe.dir,
    baseFingerprints: fingerprints,
    parameterSelection: { spec: selection.spec, patterns: selection.patterns, tensors: r.trainedTensors.length },
    defaults: { values: appliedOut.values, sources: appliedOut.sources, notes: appliedOut.notes },
    hyperparameters,
    trainedParameters: r.trainedParameters,
    lossCurve: r.losses,
    terms: r.terms,
    wallSeconds: seconds,
    breakdownSeconds: breakdown,
    device: pipe.info.device,
    versions: { lethe: version, torch: info.torchVersion, node: process.version },
    created,
  };
  const tmp = `${report}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(body, null, 2) + '\n');
  fs.renameSync(tmp, report);
  return {
    delta: o.out,
    report,
    method: method.id,
    concepts,
    losses: r.losses,
    terms: r.terms,
    trainedParameters: r.trainedParameters,
    trainedTensors: r.trainedTensors,
    seconds,
    breakdown,
    applied: appliedOut,
  };
}
