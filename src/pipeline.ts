import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from './errors';
import { runNativeJob, type RunOptions } from './job';
import { readModelDefaults, resolveModelDir, type ModelDefaults } from './models';
import { native } from './native';
import { makePlan, readSchedulerConfig, type SamplerName, type SamplingPlan, type SchedulerConfigJson } from './schedulers';
import type { AnyTensor, Tensor } from './tensor';
import { CLIPTokenizer } from './tokenizer';
import { readJson } from './inspect';
import { checkDeltasFor, type DeltaInfo } from './erase/delta';
import { modelFingerprint, sha256File } from './erase/fingerprint';
import { createHash } from 'crypto';

export type ComputeDtype = 'float32' | 'bfloat16' | 'float16';

export interface PipelineLoadOptions extends RunOptions {
  /** cpu, cuda or cuda:N (default cpu). */
  device?: string;
  /** Compute dtype (default float32). float16 is refused on CPU. */
  dtype?: ComputeDtype;
  /** Weights variant, e.g. 'fp16' for diffusion_pytorch_model.fp16.safetensors. */
  variant?: string;
  /** Delta files (erasures) to add to the UNet; each must have been made from this model. */
  deltas?: string[];
  /** Apply the deltas' weights only, without their prompt memory (what an export of them holds). */
  dropPromptMemory?: boolean;
  /**
   * An AnimateDiff MotionAdapter folder (diffusers layout: config.json + safetensors) whose motion
   * modules join the UNet, as diffusers' UNetMotionModel.from_unet2d does; default: the model
   * folder's own `motion_adapter/` when its model_index.json names one (a saved AnimateDiffPipeline).
   */
  motionAdapter?: string;
}

export interface PipelineInfo {
  dir: string;
  device: string;
  dtype: ComputeDtype;
  textEncoder: { hiddenSize: number; maxPositions: number; vocabSize: number; numLayers: number };
  /** maxFrames: 0 for an image UNet, else the most frames a clip may have (the motion adapter's). */
  unet: { inChannels: number; crossAttentionDim: number; maxFrames: number };
  vae: { scalingFactor: number; latentChannels: number; downscale: number };
}

export interface NativePipeline {
  info(): PipelineInfo;
  encodeText(o: object): Promise<Tensor>;
  predictNoise(o: object): Promise<Tensor>;
  vaeEncode(o: object): Promise<{ mean: Tensor; logvar: Tensor }>;
  vaeDecode(o: object): Promise<Tensor>;
  sample(o: object): Promise<{ latents: Tensor; images?: Tensor }>;
  applyDelta(o: object): Promise<number>;
  saveComponent(o: object): Promise<void>;
  erase(o: object): Promise<unknown>;
}

export interface EncodePromptOptions extends RunOptions {
  /** Skip the last N text-encoder layers (diffusers' clip_skip); the final layer norm is still applied. */
  clipSkip?: number;
}

export interface GenerateOptions extends RunOptions {
  prompt: string | string[];
  negativePrompt?: string | string[];
  /** Images per prompt (default 1). */
  n?: number;
  /** Default: the model's generation defaults (its lethe.json), else Stable Diffusion's 50. */
  steps?: number;
  /** Default: the model's generation defaults, else 7.5. */
  guidance?: number;
  /** Default: the model's generation defaults, else its own scheduler class. */
  scheduler?: SamplerName;
  /** DDIM's eta (default 0). */
  eta?: number;
  /** DDIM / DDPM: clamp the predicted x0 (default: the scheduler config's clip_sample, as diffusers). */
  clipSample?: boolean;
  seed?: number;
  /** Initial latents [prompts×n, C, H/f, W/f] ([prompts×n, C, frames, H/f, W/f] for clips); otherwise drawn from `seed` like diffusers' CPU generator. */
  latents?: Tensor;
  /**
   * Frames per clip: text to video with a motion adapter (Pipeline.load's `motionAdapter`), as
   * diffusers' AnimateDiffPipeline with the same initial latents. Images are then [N, frames, 3, H, W].
   */
  frames?: number;
  height?: number;
  width?: number;
  clipSkip?: number;
}

export interface GenerateResult {
  /** Decoded images, float32 [N, 3, H, W] in [0, 1]; clips (`frames`) [N, frames, 3, H, W]. */
  images: Tensor;
  /** Final latents (not divided by the VAE scaling factor). */
  latents: Tensor;
  prompts: string[];
  seed: number;
  plan: SamplingPlan;
  seconds: number;
}

const SCHEDULER_BY_CLASS: Record<string, SamplerName> = {
  DDIMScheduler: 'ddim',
  DDPMScheduler: 'ddpm',
  EulerDiscreteScheduler: 'euler',
  DPMSolverMultistepScheduler: 'dpmpp-2m',
};

function badArg(reason: string): never {
  throw new LetheError(ErrorCodes.BAD_ARGUMENT, reason);
}

function asList(value: string | string[] | undefined, what: string): string[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) badArg(`${what} is an empty list: give at least one prompt`);
  for (const p of list) if (typeof p !== 'string') badArg(`${what} must be a string or a list of strings`);
  return list;
}

function positiveInt(value: number | undefined, fallback: number, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) badArg(`${what} must be an integer in 1..${max}, got ${value}`);
  return value;
}

/** N(0, I) float32 noise from torch's CPU generator: diffusers' randn_tensor with Generator('cpu').manual_seed(seed). */
export function randomLatents(shape: number[], seed: number): Tensor {
  if (!Number.isSafeInteger(seed) || seed < 0) badArg('seed must be a non-negative integer');
  return (native() as unknown as { randn(o: object): Tensor }).randn({ shape, seed });
}

/**
 * A Stable Diffusion model in diffusers layout, loaded natively: tokenizer and sampling plans in
 * TypeScript, text encoder, UNet, VAE and the sampling loop in the addon.
 */
export class Pipeline {
  private constructor(
    readonly dir: string,
    readonly tokenizer: CLIPTokenizer,
    readonly schedulerConfig: SchedulerConfigJson,
    private readonly handle: NativePipeline,
    readonly info: PipelineInfo,
    readonly sampleSize: number,
    readonly defaultScheduler: SamplerName,
    private readonly onWarning: (message: string) => void,
    readonly defaults: ModelDefaults | Record<string, never>,
  ) {}

  /** Deltas added to this pipeline's UNet so far. */
  readonly deltas: DeltaInfo[] = [];

  /** `model` is a diffusers folder, or 'default' for the bundled model. */
  static async load(model: string, options: PipelineLoadOptions & { onWarning?: (m: string) => void } = {}): Promise<Pipeline> {
    const dir = resolveModelDir(model);
    for (const c of ['tokenizer', 'text_encoder', 'unet', 'vae', 'scheduler'])
      if (!fs.existsSync(path.join(dir, c))) throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${dir}: missing component folder ${c}/`);
    const tokenizer = CLIPTokenizer.fromDir(path.join(dir, 'tokenizer'));
    const schedulerConfig = readSchedulerConfig(path.join(dir, 'scheduler', 'scheduler_config.json'));
    const unetConfig = JSON.parse(fs.readFileSync(path.join(dir, 'unet', 'config.json'), 'utf8')) as { sample_size?: number };
    const { onProgress, signal, device = 'cpu', dtype = 'float32', variant } = options;
    const motionAdapter = resolveMotionAdapter(dir, options.motionAdapter);
    const handle = (await runNativeJob((o) => (native() as unknown as { loadPipeline(o: object): Promise<NativePipeline> }).loadPipeline({ ...o, dir, device, dtype, variant, motionAdapter }), {
      onProgress,
      signal,
    })) as NativePipeline;
    const info = handle.info();
    if (tokenizer.vocabSize > info.textEncoder.vocabSize)
      throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the text encoder only ${info.textEncoder.vocabSize}`);
    if (info.textEncoder.hiddenSize !== info.unet.crossAttentionDim)
      throw new LetheError(
        ErrorCodes.BAD_CHECKPOINT,
        `${dir}: the text encoder's hidden size ${info.textEncoder.hiddenSize} does not match the UNet's cross_attention_dim ${info.unet.crossAttentionDim}`,
      );
    const cls = (schedulerConfig as { _class_name?: string })._class_name ?? '';
    const warn = options.onWarning ?? ((m: string) => process.emitWarning(m, 'LetheWarning'));
    const defaults = readModelDefaults(dir);
    const pipe = new Pipeline(dir, tokenizer, schedulerConfig, handle, info, unetConfig.sample_size ?? 64, SCHEDULER_BY_CLASS[cls] ?? 'ddim', warn, defaults);
    for (const d of options.deltas ?? []) await pipe.applyDelta(d, { signal, dropPromptMemory: options.dropPromptMemory });
    return pipe;
  }

  /**
   * Adds an erasure's delta file to this pipeline (in place: the pipeline becomes the erased
   * model): UNet and text-encoder weights, prompt memory. Refused when the delta was made from
   * other base components, or sets an extra tensor a delta already applied sets.
   */
  async applyDelta(file: string, options: RunOptions & { scale?: number; dropPromptMemory?: boolean } = {}): Promise<DeltaInfo> {
    const drop = options.dropPromptMemory === true;
    const [found] = await checkDeltasFor(this.dir, [file], this.deltas);
    // Without its memory the delta is another model (the sample cache's identity says so).
    const info = drop && found.extras.length ? { ...found, extras: [], droppedExtras: found.extras } : found;
    await runNativeJob((o) => this.handle.applyDelta({ ...o, path: file, scale: options.scale ?? 1, dropMemory: drop }), options);
    this.deltas.push(info);
    return info;
  }

  /**
   * What identifies this model as it is now, for the sample cache's keys: the base folder's
   * fingerprint (text encoder, UNet, VAE), its tokenizer and scheduler files, and the applied
   * deltas' contents in order.
   */
  async identity(): Promise<string> {
    const h = createHash('sha256').update(await modelFingerprint(this.dir));
    for (const sub of ['tokenizer', 'scheduler']) {
      const dir = path.join(this.dir, sub);
      for (const f of fs.readdirSync(dir).sort()) if (fs.statSync(path.join(dir, f)).isFile()) h.update(`\n${sub}/${f}:${await sha256File(path.join(dir, f))}`);
    }
    for (const d of this.deltas) h.update(`\ndelta:${await sha256File(d.file)}${d.droppedExtras?.length ? ':without-prompt-memory' : ''}`);
    return h.digest('hex');
  }

  /** The sampler generate() uses when none is named. */
  get generationScheduler(): SamplerName {
    return (this.defaults.generation?.scheduler as SamplerName | undefined) ?? this.defaultScheduler;
  }

  /** @internal The native handle, for the erasure methods and export. */
  get nativeHandle(): NativePipeline {
    return this.handle;
  }

  /** Token ids [prompts, 77] as int64, warning about any text cut at the model's length. */
  tokenize(prompts: string[]): Tensor<'int64'> {
    const length = Math.min(this.tokenizer.modelMaxLength, this.info.textEncoder.maxPositions);
    const ids = new BigInt64Array(prompts.length * length);
    prompts.forEach((p, i) => {
      const enc = this.tokenizer.encode(p, { maxLength: length, padding: true });
      if (enc.truncated) this.onWarning(`prompt truncated to ${length} tokens; this part was cut: "${enc.truncated}"`);
      enc.ids.forEach((id, j) => (ids[i * length + j] = BigInt(id)));
    });
    return { dtype: 'int64', shape: [prompts.length, length], data: ids };
  }

  /** Text-encoder hidden states [prompts, 77, dim] (the UNet's conditioning). */
  async encodePrompt(prompts: string | string[], options: EncodePromptOptions = {}): Promise<Tensor> {
    const list = asList(prompts, 'prompts')!;
    const skip = options.clipSkip ?? 0;
    if (!Number.isInteger(skip) || skip < 0 || skip >= this.info.textEncoder.numLayers)
      badArg(`clipSkip must be an integer in 0..${this.info.textEncoder.numLayers - 1}`);
    const ids = this.tokenize(list);
    return runNativeJob((o) => this.handle.encodeText({ ...o, ids, skip }), options);
  }

  /**
   * The UNet's output (noise or v) for latents [B, C, h, w] at `timestep` (one value or one per sample).
   * With a motion adapter also clips [B, C, frames, h, w]; `embeddings` then hold one prompt per clip
   * [B, N, D] or one per frame [B * frames, N, D] (frames of a clip consecutive).
   */
  async predictNoise(latents: Tensor, timestep: number | number[], embeddings: Tensor, options: RunOptions = {}): Promise<Tensor> {
    const ts = Array.isArray(timestep) ? timestep : [timestep];
    const timesteps: Tensor = { dtype: 'float32', shape: [ts.length], data: Float32Array.from(ts) };
    return runNativeJob((o) => this.handle.predictNoise({ ...o, sample: latents, timesteps, context: embeddings }), options);
  }

  /** Latents (as sampled, before dividing by the scaling factor) to images [B, 3, H, W] in [0, 1]. */
  async decode(latents: Tensor, options: RunOptions = {}): Promise<Tensor> {
    return runNativeJob((o) => this.handle.vaeDecode({ ...o, latents, scaled: true, toImage: true }), options);
  }

  /** Images [B, 3, H, W] in [-1, 1] to the VAE's latent distribution (unscaled mean and logvar). */
  async encode(images: Tensor, options: RunOptions = {}): Promise<{ mean: Tensor; logvar: Tensor }> {
    return runNativeJob((o) => this.handle.vaeEncode({ ...o, images }), options);
  }

  /** Images [N, 3, H, W] in [-1, 1] to the latents the UNet sees: the VAE posterior's mean × the scaling factor. */
  async encodeLatents(images: Tensor, options: RunOptions = {}): Promise<Tensor> {
    const { mean } = await this.encode(images, options);
    const s = this.info.vae.scalingFactor;
    return { ...mean, data: mean.data.map((v) => v * s) };
  }

  /** Text to images, as diffusers' StableDiffusionPipeline with the same initial latents. */
  async generate(options: GenerateOptions): Promise<GenerateResult> {
    const started = Date.now();
    const prompts = asList(options.prompt, 'prompt')!;
    const negatives = asList(options.negativePrompt, 'negativePrompt');
    if (negatives && negatives.length !== prompts.length && negatives.length !== 1)
      badArg(`negativePrompt has ${negatives.length} entries for ${prompts.length} prompts`);
    const n = positiveInt(options.n, 1, 'n', 1024);
    const gen = this.defaults.generation ?? {};
    const steps = positiveInt(options.steps, gen.steps ?? 50, 'steps', 1000);
    const guidance = options.guidance ?? gen.guidance ?? 7.5;
    if (!Number.isFinite(guidance)) badArg('guidance must be a finite number');
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed) || seed < 0) badArg('seed must be a non-negative integer');
    const f = this.info.vae.downscale;
    const height = positiveInt(options.height, this.sampleSize * f, 'height', 8192);
    const width = positiveInt(options.width, this.sampleSize * f, 'width', 8192);
    if (height % f || width % f) badArg(`height and width must be multiples of ${f} (the VAE's downscale factor)`);
    const scheduler = options.scheduler ?? this.generationScheduler;
    const plan = makePlan(this.schedulerConfig, { scheduler, steps, eta: options.eta, clipSample: options.clipSample });

    // Each prompt repeated n times in a row, as diffusers' num_images_per_prompt.
    const expanded = prompts.flatMap((p) => Array(n).fill(p) as string[]);
    const maxFrames = this.info.unet.maxFrames ?? 0;
    if (options.frames !== undefined && maxFrames === 0)
      badArg('frames needs a motion adapter: load the model with motionAdapter (CLI: --motion-adapter DIR)');
    const frames = options.frames === undefined ? 0 : positiveInt(options.frames, 1, 'frames', maxFrames);
    const shape = frames
      ? [expanded.length, this.info.unet.inChannels, frames, height / f, width / f]
      : [expanded.length, this.info.unet.inChannels, height / f, width / f];
    if (options.latents) {
      const got = options.latents.shape;
      if (got.length !== shape.length || got.some((d, i) => d !== shape[i]))
        throw new LetheError(
          ErrorCodes.SHAPE_MISMATCH,
          `latents must be [${shape}] for ${expanded.length} ${frames ? `clips of ${frames} frames` : 'images'} of ${height}×${width}, got [${got}]`,
        );
    }
    const { onProgress, signal } = options;
    const cond = await this.encodePrompt(expanded, { clipSkip: options.clipSkip, signal });
    let uncond: Tensor | undefined;
    if (guidance > 1) {
      const neg = negatives ? prompts.flatMap((_, i) => Array(n).fill(negatives.length === 1 ? negatives[0] : negatives[i]) as string[]) : expanded.map(() => '');
      uncond = await this.encodePrompt(neg, { clipSkip: options.clipSkip, signal });
    }
    const r = await runNativeJob(
      (o) => this.handle.sample({ ...o, plan, cond, uncond, guidance, seed, shape, latents: options.latents, decode: true }),
      { onProgress, signal },
    );
    return { images: r.images!, latents: r.latents, prompts: expanded, seed, plan, seconds: (Date.now() - started) / 1000 };
  }
}

export type { AnyTensor };

/**
 * The motion adapter to join to a model's UNet: the one asked for, else the folder's own
 * `motion_adapter/` when its model_index.json names one and its unet/ is a plain UNet2DConditionModel
 * (a saved AnimateDiffPipeline's unet/ is a UNetMotionModel and needs none), else none. Checked to be a MotionAdapter
 * folder before the native load reads it.
 */
export function resolveMotionAdapter(dir: string, asked?: string): string {
  let folder = asked ? path.resolve(asked) : '';
  if (!folder) {
    const indexFile = path.join(dir, 'model_index.json');
    if (!fs.existsSync(indexFile)) return '';
    const index = readJson(indexFile);
    if (!Array.isArray(index.motion_adapter) || index.motion_adapter[1] == null) return '';
    // A saved AnimateDiffPipeline's unet/ is a UNetMotionModel that holds the adapter's modules already.
    if (readJson(path.join(dir, 'unet', 'config.json'))._class_name === 'UNetMotionModel') return '';
    folder = path.join(dir, 'motion_adapter');
  }
  const configFile = path.join(folder, 'config.json');
  if (!fs.existsSync(configFile))
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${folder}: not a motion adapter folder (no config.json); give a diffusers MotionAdapter folder`);
  const cls = readJson(configFile)._class_name;
  if (cls !== undefined && cls !== 'MotionAdapter') throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${configFile}: a ${String(cls)}, not a MotionAdapter`);
  return folder;
}
