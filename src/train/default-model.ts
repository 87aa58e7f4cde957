/**
 * Trains the bundled default model (models/shapes-64) on the shapes world, natively: a CLIP-BPE
 * tokenizer, an AutoencoderKL, then a CLIPTextModel and a UNet2DConditionModel trained together —
 * the same components and code paths as a real Stable Diffusion, only smaller. Every phase writes
 * its product into a work folder and is skipped when that product exists; the long phases
 * checkpoint and resume, so an interrupted run continues where it stopped.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';
import { saveSafetensors } from '../io/safetensors';
import { runNativeJob, type ProgressEvent } from '../job';
import { native, PACKAGE_ROOT } from '../native';
import { makeNoiseSchedule } from '../schedulers/betas';
import { resolveSchedulerConfig } from '../schedulers/config';
import { CLIPTokenizer } from '../tokenizer';
import { COLOR_NAMES, SHAPES, STYLES } from '../world/attributes';
import { formatCaption, TEMPLATES } from '../world/captions';
import { renderBatch } from '../world/dataset';
import { trainClassifier } from '../classifier';

export interface TrainDefaultOptions {
  out: string;
  work: string;
  seed: number;
  images: number;
  vaeSteps: number;
  /** Decoder-only fine-tuning steps after the latents are fixed (0 skips the phase). */
  vaeDecoderSteps: number;
  ldmSteps: number;
  vaeBatch: number;
  ldmBatch: number;
  onProgress?: (ev: ProgressEvent) => void;
  signal?: AbortSignal;
  log?: (m: string) => void;
}

/** The architecture, written as diffusers config files. */
export const DEFAULT_MODEL_CONFIGS = {
  model_index: {
    _class_name: 'StableDiffusionPipeline',
    _diffusers_version: '0.35.2',
    feature_extractor: [null, null],
    image_encoder: [null, null],
    requires_safety_checker: false,
    safety_checker: [null, null],
    scheduler: ['diffusers', 'DPMSolverMultistepScheduler'],
    text_encoder: ['transformers', 'CLIPTextModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  },
  scheduler: {
    _class_name: 'DPMSolverMultistepScheduler',
    _diffusers_version: '0.35.2',
    algorithm_type: 'dpmsolver++',
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    // Explicit, so a DDIM built from this config (an erasure's, or `--scheduler ddim`) does not
    // pick up DDIM's class default of clipping x0, which breaks this model's samples.
    clip_sample: false,
    lower_order_final: true,
    num_train_timesteps: 1000,
    prediction_type: 'epsilon',
    solver_order: 2,
    solver_type: 'midpoint',
    steps_offset: 1,
    timestep_spacing: 'linspace',
    trained_betas: null,
  },
  vae: {
    _class_name: 'AutoencoderKL',
    _diffusers_version: '0.35.2',
    act_fn: 'silu',
    block_out_channels: [32, 64, 64],
    down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
    up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
    in_channels: 3,
    out_channels: 3,
    latent_channels: 4,
    layers_per_block: 1,
    norm_num_groups: 32,
    sample_size: 64,
    scaling_factor: 1.0, // set from the trained latents' spread
    force_upcast: false,
    mid_block_add_attention: true,
    use_quant_conv: true,
    use_post_quant_conv: true,
  },
  unet: {
    _class_name: 'UNet2DConditionModel',
    _diffusers_version: '0.35.2',
    act_fn: 'silu',
    attention_head_dim: 4,
    block_out_channels: [64, 128, 128],
    center_input_sample: false,
    cross_attention_dim: 128,
    down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    downsample_padding: 1,
    flip_sin_to_cos: true,
    freq_shift: 0,
    in_channels: 4,
    out_channels: 4,
    layers_per_block: 1,
    mid_block_scale_factor: 1,
    norm_eps: 1e-5,
    norm_num_groups: 32,
    sample_size: 16,
    use_linear_projection: false,
    upcast_attention: false,
  },
  text_encoder: (vocabSize: number) => ({
    architectures: ['CLIPTextModel'],
    model_type: 'clip_text_model',
    vocab_size: vocabSize,
    hidden_size: 128,
    intermediate_size: 512,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    max_position_embeddings: 77,
    hidden_act: 'quick_gelu',
    layer_norm_eps: 1e-5,
    bos_token_id: vocabSize - 2,
    eos_token_id: vocabSize - 1,
    pad_token_id: vocabSize - 1,
    projection_dim: 128,
    initializer_range: 0.02,
    initializer_factor: 1.0,
    attention_dropout: 0.0,
    transformers_version: '4.57.1',
  }),
};

function writeJson(file: string, value: unknown) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

/** Every caption the templates can produce: the tokenizer's training corpus. */
function captionCorpus(): string {
  const lines = new Set<string>();
  for (const tpl of TEMPLATES)
    for (const shape of SHAPES) for (const color of COLOR_NAMES) for (const style of STYLES) lines.add(formatCaption(tpl, { shape, color, style }));
  return [...lines].join('\n');
}

function trainTokenizer(dir: string, work: string, log: (m: string) => void) {
  if (fs.existsSync(path.join(dir, 'vocab.json'))) return;
  const corpus = path.join(work, 'captions.txt');
  fs.writeFileSync(corpus, captionCorpus());
  log('tokenizer: training the BPE vocabulary on every caption the world can produce');
  const r = spawnSync(process.execPath, [path.join(PACKAGE_ROOT, 'scripts', 'python.js'), path.join(PACKAGE_ROOT, 'scripts', 'make_clip_vocab.py'), dir, '--merges', '600', '--corpus', corpus], {
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new LetheError(ErrorCodes.INTERNAL, 'tokenizer training (scripts/make_clip_vocab.py) failed');
}

type NativeTrain = {
  trainVae(o: object): Promise<{ loss: number }>;
  encodeLatents(o: object): Promise<{ latentStd: number }>;
  trainLdm(o: object): Promise<{ loss: number }>;
};

export async function trainDefaultModel(o: TrainDefaultOptions): Promise<void> {
  const log = o.log ?? ((m: string) => process.stderr.write(`[train-default] ${m}\n`));
  const n = native() as unknown as NativeTrain;
  fs.mkdirSync(o.work, { recursive: true });
  const stage = path.join(o.work, 'model');
  const done = (name: string) => path.join(o.work, `${name}.done`);
  const mark = (name: string) => fs.writeFileSync(done(name), new Date().toISOString());
  const run = <T>(start: (opts: object) => Promise<T>) => runNativeJob((opts) => start(opts), { onProgress: o.onProgress, signal: o.signal });

  // 1. Configs and tokenizer.
  trainTokenizer(path.join(stage, 'tokenizer'), o.work, log);
  const tokenizer = CLIPTokenizer.fromDir(path.join(stage, 'tokenizer'));
  const cfg = DEFAULT_MODEL_CONFIGS;
  writeJson(path.join(stage, 'model_index.json'), cfg.model_index);
  writeJson(path.join(stage, 'scheduler', 'scheduler_config.json'), cfg.scheduler);
  writeJson(path.join(stage, 'text_encoder', 'config.json'), cfg.text_encoder(tokenizer.vocabSize));
  writeJson(path.join(stage, 'unet', 'config.json'), cfg.unet);
  const vaeConfigFile = path.join(stage, 'vae', 'config.json');
  if (!fs.existsSync(vaeConfigFile)) writeJson(vaeConfigFile, cfg.vae);

  // 2. The dataset: rendered images and their tokenized captions.
  const data = path.join(o.work, 'dataset.safetensors');
  if (!fs.existsSync(data)) {
    log(`dataset: rendering ${o.images} images (seed ${o.seed})`);
    const batch = await renderBatch({ n: o.images, seed: o.seed, signal: o.signal });
    const ids = new BigInt64Array(o.images * 77);
    batch.specs.forEach((s, i) => tokenizer.encode(s.caption, { maxLength: 77 }).ids.forEach((id, j) => (ids[i * 77 + j] = BigInt(id))));
    await saveSafetensors(data, {
      images: { dtype: 'uint8', shape: batch.shape, data: batch.images },
      ids: { dtype: 'int64', shape: [o.images, 77], data: ids },
    });
  }

  // 3. The autoencoder.
  if (!fs.existsSync(done('vae'))) {
    log(`vae: ${o.vaeSteps} steps, batch ${o.vaeBatch}`);
    const r = await run((opts) => n.trainVae({ ...opts, modelDir: stage, data, steps: o.vaeSteps, batch: o.vaeBatch, lr: 4e-4, warmup: 100, seed: o.seed, checkpoint: path.join(o.work, 'vae.ckpt.safetensors'), checkpointEvery: 200 }));
    log(`vae: final L1 ${r.loss.toFixed(4)}`);
    mark('vae');
  }

  // 4. Latents and the scaling factor (1 / their std, as Stable Diffusion's 0.18215 was chosen).
  const latents = path.join(o.work, 'latents.safetensors');
  if (!fs.existsSync(done('latents'))) {
    const r = await run((opts) => n.encodeLatents({ ...opts, modelDir: stage, data, out: latents }));
    const vaeCfg = JSON.parse(fs.readFileSync(vaeConfigFile, 'utf8'));
    vaeCfg.scaling_factor = Number((1 / r.latentStd).toPrecision(6));
    writeJson(vaeConfigFile, vaeCfg);
    log(`latents: std ${r.latentStd.toFixed(4)} → scaling_factor ${vaeCfg.scaling_factor}`);
    mark('latents');
  }
  const scalingFactor = JSON.parse(fs.readFileSync(vaeConfigFile, 'utf8')).scaling_factor as number;

  // 4b. Decoder fine-tuning with L1 + MSE (as Stable Diffusion's ft-MSE VAE). The encoder is frozen,
  // so the latents above (and the UNet trained on them) stay valid; colours and the memorized
  // poster come back sharper than from the jointly trained decoder.
  if (o.vaeDecoderSteps > 0 && !fs.existsSync(done('vae-decoder'))) {
    log(`vae-decoder: ${o.vaeDecoderSteps} steps, batch ${o.vaeBatch}`);
    const r = await run((opts) =>
      n.trainVae({ ...opts, modelDir: stage, data, steps: o.vaeDecoderSteps, batch: o.vaeBatch, lr: 2e-4, warmup: 50, seed: o.seed, decoderOnly: 1, mseWeight: 1, checkpoint: path.join(o.work, 'vae-decoder.ckpt.safetensors'), checkpointEvery: 200 }),
    );
    log(`vae-decoder: final L1 ${r.loss.toFixed(4)}`);
    mark('vae-decoder');
  }

  // 5. Text encoder and UNet, jointly.
  if (!fs.existsSync(done('ldm'))) {
    const sched = makeNoiseSchedule(resolveSchedulerConfig(cfg.scheduler, 'ddpm'));
    const emptyIds = tokenizer.encode('', { maxLength: 77 }).ids;
    log(`ldm: ${o.ldmSteps} steps, batch ${o.ldmBatch}`);
    const r = await run((opts) =>
      n.trainLdm({
        ...opts,
        modelDir: stage,
        data,
        latents,
        scalingFactor,
        steps: o.ldmSteps,
        batch: o.ldmBatch,
        lr: 3e-4,
        warmup: 200,
        seed: o.seed,
        captionDropout: 0.1,
        emaDecay: 0.999,
        alphasCumprod: { dtype: 'float32', shape: [sched.alphasCumprod.length], data: Float32Array.from(sched.alphasCumprod) },
        emptyIds: { dtype: 'int64', shape: [77], data: BigInt64Array.from(emptyIds.map(BigInt)) },
        checkpoint: path.join(o.work, 'ldm.ckpt.safetensors'),
        checkpointEvery: 250,
      }),
    );
    log(`ldm: final loss ${r.loss.toFixed(4)}`);
    mark('ldm');
  }

  // 6. The classifier that judges the model's images (docs/architecture.md, "Evaluation"): >= 98% per head or the run fails.
  if (!fs.existsSync(done('classifier'))) {
    log('classifier: rendering a labelled set and training');
    const acc = await trainClassifier({ dir: path.join(stage, 'classifier'), work: o.work, seed: o.seed + 10, signal: o.signal, onProgress: o.onProgress });
    log(`classifier accuracy on fresh renders: shape ${acc.shape}, color ${acc.color}, style ${acc.style}, poster ${acc.poster}`);
    const worst = Math.min(acc.shape, acc.color, acc.style, acc.poster);
    if (worst < 0.98) throw new LetheError(ErrorCodes.INTERNAL, `the classifier reached only ${(worst * 100).toFixed(1)}% on a head (needs 98%); train it longer`);
    writeJson(path.join(o.work, 'classifier-accuracy.json'), acc);
    mark('classifier');
  }

  // 7. Publish: the staged folder replaces the output folder in one rename.
  const parent = path.dirname(path.resolve(o.out));
  const tmp = path.join(parent, `.${path.basename(o.out)}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.cpSync(stage, tmp, { recursive: true });
  // The model card and the measured defaults (lethe.json) are written by hand, not by training.
  for (const f of ['README.md', 'lethe.json']) if (fs.existsSync(path.join(o.out, f))) fs.copyFileSync(path.join(o.out, f), path.join(tmp, f));
  const old = `${tmp}.old`;
  if (fs.existsSync(o.out)) fs.renameSync(o.out, old);
  fs.renameSync(tmp, o.out);
  fs.rmSync(old, { recursive: true, force: true });
  log(`model written to ${o.out}`);
}
