import * as fs from 'fs';
import * as path from 'path';
import type { Argv } from 'yargs';
import { ErrorCodes, LetheError } from '../errors';
import { animationOf, pngOf, writeFilesAtomically } from '../image';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import { Pipeline, type ComputeDtype } from '../pipeline';
import { SAMPLER_NAMES, type SamplerName } from '../schedulers';
import type { Tensor } from '../tensor';
import { printJson } from './output';
import { interruptSignal, ProgressBar } from './progress';

export const command = 'generate';
export const describe = 'Generate images from a prompt with a diffusers model folder (or the bundled default)';

export function builder(y: Argv) {
  return y
    .option('model', { type: 'string', default: 'default', describe: "diffusers folder, or 'default'" })
    .option('prompt', { type: 'string', demandOption: true, describe: 'the prompt' })
    .option('negative', { type: 'string', describe: 'negative prompt' })
    .option('n', { type: 'number', default: 1, describe: 'images' })
    .option('steps', { type: 'number', describe: "default: the model's generation defaults (its lethe.json), else 50" })
    .option('guidance', { type: 'number', describe: "default: the model's generation defaults, else 7.5" })
    .option('clip-sample', { type: 'boolean', describe: "ddim / ddpm: clamp the predicted x0 to [-1, 1] (default: the scheduler config's clip_sample, as diffusers)" })
    .option('scheduler', { type: 'string', choices: SAMPLER_NAMES as string[], describe: "sampler (default: the model's generation defaults, else its own scheduler class)" })
    .option('seed', { type: 'number', default: 0 })
    .option('height', { type: 'number' })
    .option('width', { type: 'number' })
    .option('clip-skip', { type: 'number', default: 0 })
    .option('motion-adapter', { type: 'string', describe: "an AnimateDiff MotionAdapter folder for the model's UNet (default: the model folder's own, if its model_index.json names one)" })
    .option('frames', { type: 'number', describe: 'frames per clip: text to video (needs a motion adapter); writes an animated WebP and GIF per clip plus each frame as a PNG' })
    .option('fps', { type: 'number', default: 8, describe: 'clips: frames per second of the WebP / GIF' })
    .option('latents', { type: 'string', describe: 'initial latents: a .safetensors file with tensor `latents` [n,C,h,w] ([n,C,frames,h,w] for clips)' })
    .option('save-tensor', { type: 'string', describe: 'also write the images as float32 [n,3,H,W] ([n,frames,3,H,W] for clips) in [0,1] (tensor `images`) to this .safetensors file' })
    .option('out', { type: 'string', default: 'lethe-out', describe: 'folder for the PNGs' })
    .option('device', { type: 'string', default: 'cpu' })
    .option('dtype', { type: 'string', default: 'float32', choices: ['float32', 'bfloat16', 'float16'] })
    .option('delta', { type: 'string', array: true, describe: 'delta file(s) to apply (erasures made from this model)' })
    .option('json', { type: 'boolean', default: false });
}

interface Args {
  model: string;
  prompt: string;
  negative?: string;
  n: number;
  steps?: number;
  guidance?: number;
  clipSample?: boolean;
  scheduler?: string;
  seed: number;
  height?: number;
  width?: number;
  clipSkip: number;
  motionAdapter?: string;
  frames?: number;
  fps: number;
  latents?: string;
  saveTensor?: string;
  out: string;
  device: string;
  dtype: string;
  delta?: string[];
  json: boolean;
}

async function readLatents(file: string): Promise<Tensor> {
  const { tensors } = await loadSafetensors(file, { names: ['latents'] });
  const t = tensors.latents;
  if (t.dtype !== 'float32') throw new LetheError(ErrorCodes.BAD_ARGUMENT, `${file}: latents must be float32, not ${t.dtype}`);
  return t as Tensor;
}

export async function handler(argv: Args) {
  const interrupt = interruptSignal();
  const bar = new ProgressBar('sampling', !argv.json && Boolean(process.stderr.isTTY));
  try {
    const { signal } = interrupt;
    const latents = argv.latents ? await readLatents(argv.latents) : undefined;
    const pipe = await Pipeline.load(argv.model, { device: argv.device, dtype: argv.dtype as ComputeDtype, signal, deltas: argv.delta, motionAdapter: argv.motionAdapter });
    const r = await pipe.generate({
      prompt: argv.prompt,
      negativePrompt: argv.negative,
      n: argv.n,
      steps: argv.steps,
      guidance: argv.guidance,
      clipSample: argv.clipSample,
      scheduler: argv.scheduler as SamplerName | undefined,
      seed: argv.seed,
      height: argv.height,
      width: argv.width,
      clipSkip: argv.clipSkip,
      latents,
      frames: argv.frames,
      signal,
      onProgress: bar.update,
    });
    bar.done();
    fs.mkdirSync(argv.out, { recursive: true });
    const count = r.images.shape[0];
    const files = [];
    const clips: string[] = [];
    if (r.images.shape.length === 5) {
      const frames = r.images.shape[1];
      const flat: Tensor = { ...r.images, shape: [count * frames, ...r.images.shape.slice(2)] };
      for (let i = 0; i < count; i++) {
        // Each frame encoded once: its PNG, and the page of both animations.
        const pngs: Buffer[] = [];
        for (let f = 0; f < frames; f++) pngs.push(await pngOf(flat, i * frames + f));
        for (const format of ['webp', 'gif'] as const) {
          const file = path.join(argv.out, `${argv.seed}-${i}.${format}`);
          files.push({ file, data: await animationOf(pngs, format, argv.fps) });
          clips.push(file);
        }
        pngs.forEach((data, f) => files.push({ file: path.join(argv.out, `${argv.seed}-${i}-frame${f}.png`), data }));
      }
    } else {
      for (let i = 0; i < count; i++) files.push({ file: path.join(argv.out, `${argv.seed}-${i}.png`), data: await pngOf(r.images, i) });
    }
    // The tensor first (atomic on its own), then the PNGs all at once; Ctrl-C before this point writes nothing.
    if (signal.aborted) throw new LetheError(ErrorCodes.CANCELLED, 'interrupted');
    if (argv.saveTensor) await saveSafetensors(argv.saveTensor, { images: r.images }, { metadata: { prompt: argv.prompt, seed: String(argv.seed) } });
    await writeFilesAtomically(files, signal);
    const summary = {
      images: files.map((f) => f.file).filter((f) => !clips.includes(f)),
      clips,
      tensor: argv.saveTensor ?? null,
      prompt: argv.prompt,
      seed: r.seed,
      steps: r.plan.steps.length,
      scheduler: r.plan.scheduler,
      seconds: r.seconds,
    };
    if (argv.json) printJson(summary);
    else if (clips.length) process.stdout.write(`${count} clip(s) in ${r.seconds.toFixed(1)}s: ${clips.join(', ')} (frames as PNGs beside them)\n`);
    else process.stdout.write(`${files.length} image(s) in ${r.seconds.toFixed(1)}s: ${summary.images.join(', ')}\n`);
  } finally {
    bar.done();
    interrupt.dispose();
  }
}
