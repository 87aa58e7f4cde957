// AnimateDiff's motion UNet (diffusers' UNetMotionModel.from_unet2d(unet, MotionAdapter)) held to
// diffusers on the fixtures of scripts/make_motion_fixtures.py.
import * as fs from 'fs';
import * as path from 'path';
import { erase, loadSafetensors, Pipeline, randomLatents, saveSafetensors, type AnyTensor, type Tensor } from '../src';
import sharp from 'sharp';
import { expectCode, maxAbs, maxAbsDiff, ROOT, runCli, tmpDir } from './helpers';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'models');
const TOL = 1e-4; // fp32 max abs error, as for the image UNet
const f32 = (t: AnyTensor) => t as Tensor;

/** A clip's context repeated per frame, the layout diffusers' AnimateDiffPipeline passes. */
function perFrame(states: Tensor, frames: number): Tensor {
  const [b, n, d] = states.shape;
  const out = new Float32Array(b * frames * n * d);
  for (let i = 0; i < b; i++)
    for (let f = 0; f < frames; f++) out.set(states.data.subarray(i * n * d, (i + 1) * n * d), (i * frames + f) * n * d);
  return { dtype: 'float32', shape: [b * frames, n, d], data: out };
}

/** A copy of a motion adapter folder with its config edited. */
function editedAdapter(name: string, edit: (c: Record<string, unknown>) => void): string {
  const dir = path.join(tmpDir('lethe-motion-'), name);
  fs.cpSync(path.join(FIXTURES, name), dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(config);
  fs.writeFileSync(file, JSON.stringify(config));
  return dir;
}

describe.each([
  ['tiny-sd1', 'tiny-motion-sd1'],
  ['tiny-sd2', 'tiny-motion-sd2'],
])('%s + %s matches diffusers UNetMotionModel', (model, adapter) => {
  let pipe: Pipeline;
  let ref: Record<string, AnyTensor>;

  beforeAll(async () => {
    pipe = await Pipeline.load(path.join(FIXTURES, model), { motionAdapter: path.join(FIXTURES, adapter), onWarning: () => {} });
    ref = (await loadSafetensors(path.join(FIXTURES, `${adapter}-reference.safetensors`))).tensors;
  });

  test.each(['in', 'in2'])('clip %s: one prompt per clip and one per frame give diffusers\' output', async (key) => {
    const sample = f32(ref[`motion.${key}.sample`]);
    const ts = Array.from(f32(ref[`motion.${key}.timestep`]).data);
    const states = f32(ref[`motion.${key}.encoder_hidden_states`]);
    const want = f32(ref[`motion.${key}.out`]);
    const out = await pipe.predictNoise(sample, ts, states);
    expect(out.shape).toEqual(want.shape);
    // The reference is far from zero and from the image UNet's answer: the motion modules matter.
    expect(maxAbs(want)).toBeGreaterThan(0.1);
    expect(maxAbsDiff(out, want)).toBeLessThanOrEqual(TOL);
    const framed = await pipe.predictNoise(sample, ts, perFrame(states, sample.shape[2]));
    expect(maxAbsDiff(framed, want)).toBeLessThanOrEqual(TOL);
  });

  test('info reports the frames a clip may have', () => {
    expect(pipe.info.unet.maxFrames).toBe(adapter === 'tiny-motion-sd1' ? 32 : 16);
  });
});

describe('motion adapter: bad input', () => {
  const sd1 = path.join(FIXTURES, 'tiny-sd1');

  test('the motion modules change the output, and images still run as the image UNet', async () => {
    const image = await Pipeline.load(sd1, { onWarning: () => {} });
    const motion = await Pipeline.load(sd1, { motionAdapter: path.join(FIXTURES, 'tiny-motion-sd1'), onWarning: () => {} });
    const ref = (await loadSafetensors(path.join(FIXTURES, 'tiny-motion-sd1-reference.safetensors'))).tensors;
    const states = f32(ref['motion.in2.encoder_hidden_states']);
    const x = randomLatents([1, 4, 8, 8], 3);
    const a = await image.predictNoise(x, 57, states);
    const b = await motion.predictNoise(x, 57, states);
    expect(maxAbsDiff(a, b)).toBe(0);
    // A one-frame clip still goes through the temporal layers (attention over one frame is the identity
    // of its value path, not of the module), so it differs from the image.
    const clip: Tensor = { dtype: 'float32', shape: [1, 4, 1, 8, 8], data: x.data };
    const c = await motion.predictNoise(clip, 57, states);
    expect(maxAbsDiff(c, a)).toBeGreaterThan(1e-3);
  });

  test('a clip on an image UNet, too many frames, a wrong context batch', async () => {
    const image = await Pipeline.load(sd1, { onWarning: () => {} });
    const states = await image.encodePrompt('a red circle');
    await expectCode(image.predictNoise(randomLatents([1, 4, 2, 8, 8], 0), 10, states), 'LETHE_SHAPE_MISMATCH');
    const motion = await Pipeline.load(path.join(FIXTURES, 'tiny-sd2'), { motionAdapter: path.join(FIXTURES, 'tiny-motion-sd2'), onWarning: () => {} });
    const states2 = await motion.encodePrompt('a red circle');
    await expectCode(motion.predictNoise(randomLatents([1, 4, 17, 8, 8], 0), 10, states2), 'LETHE_SHAPE_MISMATCH');
    const three = { dtype: 'float32' as const, shape: [3, states2.shape[1], states2.shape[2]], data: new Float32Array(3 * states2.shape[1] * states2.shape[2]) };
    await expectCode(motion.predictNoise(randomLatents([1, 4, 2, 8, 8], 0), 10, three), 'LETHE_SHAPE_MISMATCH');
  });

  test.each([
    ['another base model (block_out_channels)', (c: Record<string, unknown>) => { c.block_out_channels = [32, 64, 64]; }],
    ['other layers per block', (c: Record<string, unknown>) => { c.motion_layers_per_block = 1; }],
    ['its own input convolution', (c: Record<string, unknown>) => { c.conv_in_channels = 8; }],
    ['two mid-block motion layers', (c: Record<string, unknown>) => { c.motion_mid_block_layers_per_block = 2; }],
    ['heads that do not divide the channels', (c: Record<string, unknown>) => { c.motion_num_attention_heads = 3; }],
    ['weights of another shape (more transformer layers)', (c: Record<string, unknown>) => { c.motion_transformer_layers_per_block = 2; }],
  ])('refused: %s', async (_what, edit) => {
    const dir = editedAdapter('tiny-motion-sd1', edit);
    await expectCode(Pipeline.load(sd1, { motionAdapter: dir, onWarning: () => {} }), 'LETHE_BAD_CHECKPOINT');
  });

  test('refused: not a motion adapter folder, or another class', async () => {
    await expectCode(Pipeline.load(sd1, { motionAdapter: path.join(FIXTURES, 'tiny-sd1', 'unet', 'nothing'), onWarning: () => {} }), 'LETHE_BAD_CHECKPOINT');
    await expectCode(Pipeline.load(sd1, { motionAdapter: path.join(FIXTURES, 'tiny-sd1', 'unet'), onWarning: () => {} }), 'LETHE_BAD_CHECKPOINT');
  });
});

describe('a saved AnimateDiffPipeline folder (unet/ is a UNetMotionModel)', () => {
  // tiny-animatediff-sd1 holds what AnimateDiffPipeline.save_pretrained wrote, less the weights: its
  // unet's weights are tiny-sd1's UNet plus tiny-motion-sd1 under the same keys (the fixture script
  // checks that tensor for tensor), so they are assembled here from those two files.
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmpDir('lethe-animatediff-'), 'model');
    const sd1 = path.join(FIXTURES, 'tiny-sd1');
    for (const c of ['tokenizer', 'text_encoder', 'vae', 'scheduler']) fs.cpSync(path.join(sd1, c), path.join(dir, c), { recursive: true });
    fs.cpSync(path.join(FIXTURES, 'tiny-animatediff-sd1'), dir, { recursive: true });
    fs.cpSync(path.join(FIXTURES, 'tiny-motion-sd1'), path.join(dir, 'motion_adapter'), { recursive: true });
    const unet = await loadSafetensors(path.join(sd1, 'unet', 'diffusion_pytorch_model.safetensors'));
    const adapter = await loadSafetensors(path.join(FIXTURES, 'tiny-motion-sd1', 'diffusion_pytorch_model.safetensors'));
    await saveSafetensors(path.join(dir, 'unet', 'diffusion_pytorch_model.safetensors'), { ...unet.tensors, ...adapter.tensors });
  });

  test('loads as is and matches diffusers', async () => {
    const pipe = await Pipeline.load(dir, { onWarning: () => {} });
    expect(pipe.info.unet.maxFrames).toBe(32);
    const ref = (await loadSafetensors(path.join(FIXTURES, 'tiny-motion-sd1-reference.safetensors'))).tensors;
    const out = await pipe.predictNoise(f32(ref['motion.in.sample']), Array.from(f32(ref['motion.in.timestep']).data), f32(ref['motion.in.encoder_hidden_states']));
    expect(maxAbsDiff(out, f32(ref['motion.in.out']))).toBeLessThanOrEqual(TOL);
  });

  test('a motion adapter on top of it is refused', async () => {
    await expectCode(Pipeline.load(dir, { motionAdapter: path.join(dir, 'motion_adapter'), onWarning: () => {} }), 'LETHE_BAD_ARGUMENT');
  });

  test('a plain UNet folder whose model_index.json names its motion adapter gets it', async () => {
    const plain = path.join(tmpDir('lethe-animatediff-plain-'), 'model');
    fs.cpSync(dir, plain, { recursive: true });
    fs.rmSync(path.join(plain, 'unet'), { recursive: true });
    fs.cpSync(path.join(FIXTURES, 'tiny-sd1', 'unet'), path.join(plain, 'unet'), { recursive: true });
    const pipe = await Pipeline.load(plain, { onWarning: () => {} });
    expect(pipe.info.unet.maxFrames).toBe(32);
  });
});

describe('text to video matches AnimateDiffPipeline', () => {
  test.each(['ddim', 'euler', 'dpmpp-2m', 'ddpm'] as const)('%s: same latents in, the same final latents and frames [N, frames, 3, H, W]', async (sampler) => {
    const pipe = await Pipeline.load(path.join(FIXTURES, 'tiny-sd1'), { motionAdapter: path.join(FIXTURES, 'tiny-motion-sd1'), onWarning: () => {} });
    const r = await loadSafetensors(path.join(FIXTURES, 'tiny-animatediff-sd1-reference.safetensors'));
    const t2v = JSON.parse(r.metadata.t2v) as { prompt: string; negative_prompt: string; num_inference_steps: number; guidance_scale: number; height: number; width: number; num_frames: number };
    expect(Object.keys(JSON.parse(r.metadata.samplers))).toContain(sampler);
    const ref = (k: string) => f32(r.tensors[`t2v.${sampler}.${k}`]);
    // seed 0: DDPM's per-step noise, drawn as the reference's generator (seed 0) draws it.
    const out = await pipe.generate({
      prompt: t2v.prompt, negativePrompt: t2v.negative_prompt, steps: t2v.num_inference_steps, guidance: t2v.guidance_scale,
      height: t2v.height, width: t2v.width, frames: t2v.num_frames, scheduler: sampler, seed: 0, latents: ref('latents_in'),
    });
    expect(out.latents.shape).toEqual(ref('latents_out').shape);
    expect(out.images.shape).toEqual(ref('frames').shape);
    expect(maxAbsDiff(out.latents, ref('latents_out'))).toBeLessThanOrEqual(1e-3);
    expect(maxAbsDiff(out.images, ref('frames'))).toBeLessThanOrEqual(1e-3);
    // Frames differ from each other (a clip, not one image repeated).
    const [, f, c, h, w] = out.images.shape;
    const frame = (k: number) => ({ ...out.images, shape: [c, h, w], data: out.images.data.subarray(k * c * h * w, (k + 1) * c * h * w) });
    expect(f).toBe(4);
    expect(maxAbsDiff(frame(0), frame(f - 1))).toBeGreaterThan(1e-3);
  });

  test('frames without a motion adapter, or more than it covers, are refused', async () => {
    const image = await Pipeline.load(path.join(FIXTURES, 'tiny-sd1'), { onWarning: () => {} });
    await expectCode(image.generate({ prompt: 'a red circle', frames: 4, steps: 2 }), 'LETHE_BAD_ARGUMENT');
    const motion = await Pipeline.load(path.join(FIXTURES, 'tiny-sd2'), { motionAdapter: path.join(FIXTURES, 'tiny-motion-sd2'), onWarning: () => {} });
    await expectCode(motion.generate({ prompt: 'a red circle', frames: 17, steps: 2 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(motion.generate({ prompt: 'a red circle', frames: 4, steps: 2, latents: randomLatents([1, 4, 8, 8], 0) }), 'LETHE_SHAPE_MISMATCH');
  });
});

describe('lethe generate --frames', () => {
  test('writes an animated WebP and GIF per clip, the frames as PNGs, and the clip tensor', async () => {
    const out = tmpDir('lethe-t2v-cli-');
    const model = path.join(FIXTURES, 'tiny-sd1');
    const r = runCli(['generate', '--model', model, '--motion-adapter', path.join(FIXTURES, 'tiny-motion-sd1'), '--frames', '4', '--prompt', 'a red circle', '-n', '2',
      '--steps', '3', '--out', out, '--save-tensor', path.join(out, 'clips.safetensors'), '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout) as { clips: string[]; images: string[] };
    expect(summary.clips.map((f) => path.basename(f))).toEqual(['0-0.webp', '0-0.gif', '0-1.webp', '0-1.gif']);
    expect(summary.images).toHaveLength(8);
    for (const f of summary.clips) {
      const meta = await sharp(f, { animated: true }).metadata();
      expect(meta.pages).toBe(4);
      expect(meta.pageHeight).toBe(16);
    }
    const saved = await loadSafetensors(path.join(out, 'clips.safetensors'));
    expect(saved.tensors.images.shape).toEqual([2, 4, 3, 16, 16]);
    const bad = runCli(['generate', '--model', model, '--frames', '4', '--prompt', 'a red circle', '--steps', '2', '--out', tmpDir('lethe-t2v-bad-')]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/LETHE_BAD_ARGUMENT.*motion adapter/s);
  });
});

describe('erasures made on the image model apply to its video model (the transfer)', () => {
  const sd1 = path.join(FIXTURES, 'tiny-sd1');
  const adapter = path.join(FIXTURES, 'tiny-motion-sd1');
  let te: string;
  let unet: string;
  beforeAll(async () => {
    const out = tmpDir('lethe-transfer-');
    const pipe = await Pipeline.load(sd1, { onWarning: () => {} });
    te = (await erase({ model: sd1, pipeline: pipe, method: 'fewshot-te', concept: 'red circle', zeroShot: true, epochs: 1, lr: 1e-2, out: path.join(out, 'te.safetensors') })).delta;
    unet = (await erase({ model: sd1, pipeline: pipe, method: 'esd-x', concept: 'red circle', iterations: 2, ddimSteps: 3, lr: 1e-3, out: path.join(out, 'unet.safetensors') })).delta;
  });

  test('a text-encoder delta: the video model sees the erased image model\'s text states', async () => {
    const erasedImage = await Pipeline.load(sd1, { deltas: [te], onWarning: () => {} });
    const video = await Pipeline.load(sd1, { motionAdapter: adapter, onWarning: () => {} });
    const erasedVideo = await Pipeline.load(sd1, { motionAdapter: adapter, deltas: [te], onWarning: () => {} });
    const want = await erasedImage.encodePrompt('a red circle');
    expect(maxAbsDiff(await erasedVideo.encodePrompt('a red circle'), want)).toBe(0);
    expect(maxAbsDiff(await video.encodePrompt('a red circle'), want)).toBeGreaterThan(1e-4);
    const clip = { prompt: 'a red circle', frames: 3, steps: 3, height: 16, width: 16, scheduler: 'ddim' as const };
    expect(maxAbsDiff((await erasedVideo.generate(clip)).images, (await video.generate(clip)).images)).toBeGreaterThan(1e-4);
  });

  test('a UNet delta lands on the spatial layers; a delta from another model is refused', async () => {
    const image = await Pipeline.load(sd1, { onWarning: () => {} });
    const erasedImage = await Pipeline.load(sd1, { deltas: [unet], onWarning: () => {} });
    const erasedVideo = await Pipeline.load(sd1, { motionAdapter: adapter, deltas: [unet], onWarning: () => {} });
    const states = await image.encodePrompt('a red circle');
    const x = randomLatents([1, 4, 8, 8], 5);
    // Images skip the motion modules, so the erased video model's image path is the erased image model.
    const erasedEps = await erasedImage.predictNoise(x, 300, states);
    expect(maxAbsDiff(erasedEps, await image.predictNoise(x, 300, states))).toBeGreaterThan(0);
    expect(maxAbsDiff(await erasedVideo.predictNoise(x, 300, states), erasedEps)).toBe(0);
    const other = path.join(tmpDir('lethe-transfer-other-'), 'te.safetensors');
    const sd2 = await Pipeline.load(path.join(FIXTURES, 'tiny-sd2'), { onWarning: () => {} });
    await erase({ model: path.join(FIXTURES, 'tiny-sd2'), pipeline: sd2, method: 'fewshot-te', concept: 'red circle', zeroShot: true, epochs: 1, lr: 1e-2, out: other });
    await expectCode(Pipeline.load(sd1, { motionAdapter: adapter, deltas: [other], onWarning: () => {} }), 'LETHE_BAD_CHECKPOINT');
  });
});
