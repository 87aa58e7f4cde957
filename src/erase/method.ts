/**
 * The erasure framework's contract with a method, and the one registry of methods
 * (docs/adding-a-method.md). A method file declares its options (one zod schema: the CLI flags,
 * the API's validation and the report's hyperparameters all come from it), its reference
 * defaults, its default parameter selection and how it turns resolved options into prompt groups
 * and native options; `erase()` (src/erase/erase.ts) does everything else.
 */
import type { z } from 'zod';
import { ErrorCodes, LetheError } from '../errors';
import type { ModelDefaults } from '../models';
import type { ProgressEvent } from '../job';
import type { Pipeline } from '../pipeline';
import type { SamplingPlan } from '../schedulers';
import type { Tensor } from '../tensor';

/** Options every method has; their values come from the caller, the model's defaults or the method's reference defaults. */
export interface CommonMethodOptions {
  /** Steps; a method that derives them (few-shot: epochs × batches) may leave it unset. */
  iterations: number;
  lr: number;
  seed: number;
  /** A preset name, patterns, or both, comma-separated (src/erase/params.ts). */
  params: string;
  /** Learnable memory tokens joined to the text in the chosen cross-attention layers (0: none). */
  memoryTokens: number;
  /** Where: all, in, mid, out, midout, inmid, or globs on attn2 layer names. */
  memoryLayers: string;
}

export interface PrepareContext<O> {
  /** The base model, loaded. */
  pipe: Pipeline;
  /** The concepts as given (parsed list). */
  concepts: string[];
  /** The option names the caller set (the others came from the model's or the method's defaults). */
  explicit: ReadonlySet<string>;
  /** Resolved options: common and the method's own. */
  options: CommonMethodOptions & O;
  /** The model folder's defaults (world, generation, …); {} for a user's checkpoint. */
  model: ModelDefaults | Record<string, never>;
  /** Notes for the user about how options were applied (printed at the start and kept in the report). */
  note(message: string): void;
  /** The run's cancellation and progress, for work a method does before training (anchor images). */
  signal?: AbortSignal;
  onProgress?: (ev: ProgressEvent) => void;
}

/** What a method hands the native job. */
export interface NativeRequest {
  /** Prompt groups by name, as text; the framework tokenizes them. */
  prompts: Record<string, string[]>;
  /** The native method's own options. */
  options: Record<string, unknown>;
  /** The sampler, for methods that sample. */
  plan?: SamplingPlan;
  /** What the delta's metadata and the report record as the run's settings (default: the resolved options). */
  hyperparameters?: Record<string, unknown>;
  /** The concepts as trained (e.g. phrased as a model's captions phrase them); default: as given. */
  concepts?: string[];
  /**
   * Every prompt naming the concept that training saw (Concept Ablation's target prompts, few-shot's
   * templates); default: the concepts as trained. Kept in the delta (`trained_prompts`) so an
   * evaluation can tell trained prompts from held-out ones (the report's generalization rows).
   */
  trainedPrompts?: string[];
  /** Extra delta metadata. */
  metadata?: Record<string, string>;
  /** The run's step count when the method derives it (few-shot: epochs × batches); overrides `iterations`. */
  iterations?: number;
  /** The cross-attention memory, for a method whose own options place it (prompt-memory); default: the common memoryTokens / memoryLayers. */
  memory?: { tokens: number; layers: string };
  /** Values to start from (an earlier delta of the same selection: continual erasure): weight deltas are added to the base's, extras replace the new ones. */
  start?: Record<string, Tensor>;
  /** Seconds of work done in prepare (e.g. anchor generation), joined to the native job's for the breakdown. */
  seconds?: Record<string, number>;
}

export interface ErasureMethod<S extends z.ZodObject = z.ZodObject> {
  /** The name users give (`--method esd-x`). */
  id: string;
  /** The native method it runs (native/erase/<native>.cc registers it). */
  native: string;
  /** One line for --help and the docs. */
  summary: string;
  /** Its own options (not the common ones). */
  options: S;
  /** The reference implementation's defaults, for real checkpoints: iterations, lr, params and the method's options. */
  referenceDefaults: Partial<CommonMethodOptions> & Partial<z.infer<S>>;
  /** Options whose CLI flag names a file of prompts, one per line (the API takes the list). */
  promptFileOptions?: string[];
  /** Whether the method adds `extra.` tensors (they attach to the UNet, so its fingerprint is recorded). */
  addsExtras?: boolean;
  /**
   * The parameter selection from the resolved options, for a method whose own option chooses it
   * (few-shot's teParams); default: the common `params`.
   */
  parameterSelection?(options: CommonMethodOptions & z.infer<S>, explicit: ReadonlySet<string>): string | string[];
  prepare(ctx: PrepareContext<z.infer<S>>): Promise<NativeRequest> | NativeRequest;
  /** The result's timing breakdown from the native job's named seconds (default: as they come). */
  breakdown?(seconds: Record<string, number>): Record<string, number>;
}

const registry = new Map<string, ErasureMethod>();

/** Called once by each method's file. */
export function registerMethod<S extends z.ZodObject>(method: ErasureMethod<S>): ErasureMethod<S> {
  if (registry.has(method.id)) throw new Error(`erasure method '${method.id}' is registered twice`);
  registry.set(method.id, method as unknown as ErasureMethod);
  return method;
}

export function methodIds(): string[] {
  return [...registry.keys()];
}

export function registeredMethods(): ErasureMethod[] {
  return [...registry.values()];
}

export function getMethod(id: string): ErasureMethod {
  const m = registry.get(id);
  if (!m) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `unknown method '${id}' (${methodIds().join(', ')})`);
  return m;
}
