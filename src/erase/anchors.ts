/**
 * Anchor images (docs/ca.md): N images the *base* model generates from anchor prompts, encoded by
 * its VAE once and kept in the sample cache (src/cache/samples.ts) under what made them — the
 * model's identity, the prompts, the sampler and its settings, the seed — so every later run and
 * method asking for the same anchors reuses them. Image k is drawn from prompt k mod P, in chunks
 * of CHUNK images whose initial latents come from seed + chunk index (each chunk as one
 * `generate` call, diffusers' CPU-generator noise).
 *
 * As the reference code does, the images are stored as 8-bit pictures before they are encoded (it
 * saves them as image files); the latent is the VAE posterior's mean times the scaling factor
 * (the reference draws a fresh sample of the posterior each time it loads an image: the mean,
 * cached, is the deliberate deviation).
 */
import { cachedSamples } from '../cache/samples';
import { ErrorCodes, LetheError } from '../errors';
import type { ProgressEvent } from '../job';
import type { Pipeline } from '../pipeline';
import type { SamplerName } from '../schedulers';
import { concatFirst, firstNonFinite, type Tensor } from '../tensor';

export interface AnchorSpec {
  prompts: string[];
  images: number;
  steps: number;
  guidance: number;
  scheduler: SamplerName;
  seed: number;
}

export interface AnchorSet {
  /** [N, C, h, w] float32, scaled as the UNet sees them. */
  latents: Tensor;
  /** [N] int64: the prompt each image was drawn from. */
  promptIndex: Tensor<'int64'>;
  /** [N, 3, H, W] in [0, 1], 8-bit values. */
  images: Tensor;
  /** The cache key's hash-free identity (what the report records). */
  key: Record<string, unknown>;
  cached: boolean;
  seconds: number;
}

const CHUNK = 25;

export async function anchorSet(
  pipe: Pipeline,
  spec: AnchorSpec,
  options: { signal?: AbortSignal; onProgress?: (p: ProgressEvent) => void } = {},
): Promise<AnchorSet> {
  const started = Date.now();
  if (spec.prompts.length === 0) throw new LetheError(ErrorCodes.BAD_ARGUMENT, 'no anchor prompts: give at least one');
  if (!Number.isInteger(spec.images) || spec.images < 1) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `anchorImages must be an integer >= 1, got ${spec.images}`);
  const key = {
    kind: 'anchors',
    model: await pipe.identity(),
    prompts: spec.prompts,
    images: spec.images,
    steps: spec.steps,
    guidance: spec.guidance,
    scheduler: spec.scheduler,
    seed: spec.seed,
    chunk: CHUNK,
    encoding: 'uint8-vae-mean',
  };
  const { tensors, hit } = await cachedSamples(key, async () => {
    const parts: Tensor[] = [];
    const latentParts: Tensor[] = [];
    const chunks = Math.ceil(spec.images / CHUNK);
    for (let c = 0; c < chunks; c++) {
      const ids = Array.from({ length: Math.min(CHUNK, spec.images - c * CHUNK) }, (_, j) => (c * CHUNK + j) % spec.prompts.length);
      const g = await pipe
        .generate({ prompt: ids.map((i) => spec.prompts[i]), steps: spec.steps, guidance: spec.guidance, scheduler: spec.scheduler, seed: spec.seed + c, signal: options.signal })
        .catch((e: unknown) => {
          if ((e as LetheError).code !== ErrorCodes.NON_FINITE) throw e;
          throw new LetheError(ErrorCodes.NON_FINITE, `the anchor images cannot be made: ${(e as Error).message.replace(/^LETHE_NON_FINITE: /, '')} (prompts: ${ids.map((i) => `'${spec.prompts[i]}'`).join(', ')})`);
        });
      const images = quantize(g.images);
      const bad = firstNonFinite(images);
      if (bad >= 0)
        throw new LetheError(
          ErrorCodes.NON_FINITE,
          `the base model generated NaN or infinity for anchor prompt '${spec.prompts[ids[bad]]}': the anchors cannot be made; check the model (or its dtype) and the prompts`,
        );
      latentParts.push(await pipe.encodeLatents(toSigned(images), { signal: options.signal }));
      parts.push(images);
      options.onProgress?.({ phase: 'anchors', step: c + 1, total: chunks });
    }
    const latents = concatFirst(latentParts);
    if (firstNonFinite(latents) >= 0) throw new LetheError(ErrorCodes.NON_FINITE, 'the VAE encoded an anchor image to NaN or infinity: the anchors cannot be made');
    const promptIndex: Tensor<'int64'> = {
      dtype: 'int64',
      shape: [spec.images],
      data: BigInt64Array.from({ length: spec.images }, (_, k) => BigInt(k % spec.prompts.length)),
    };
    return { latents, promptIndex, images: concatFirst(parts) };
  });
  return {
    latents: tensors.latents as Tensor,
    promptIndex: tensors.promptIndex as Tensor<'int64'>,
    images: tensors.images as Tensor,
    key,
    cached: hit,
    seconds: (Date.now() - started) / 1000,
  };
}

/** As an 8-bit image file holds it. */
function quantize(images: Tensor): Tensor {
  return { ...images, data: images.data.map((v) => Math.round(Math.min(1, Math.max(0, v)) * 255) / 255) };
}

function toSigned(images: Tensor): Tensor {
  return { ...images, data: images.data.map((v) => v * 2 - 1) };
}
